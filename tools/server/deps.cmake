# spillway-server: libmicrohttpd for HTTP (libcurl comes with libspillway,
# for the --hf downloader).
if(NOT TARGET sw::MHD)
  message(FATAL_ERROR "spillway-server needs libmicrohttpd (run scripts/install-deps.sh)")
endif()
target_link_libraries(spillway-server PRIVATE sw::MHD)

# The web page (tools/server/web/*) is compiled into the binary: nothing is
# read from disk or fetched at run time.
file(GLOB SW_WEB_FILES CONFIGURE_DEPENDS ${dir}/web/*)
file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/gen)
set(SW_WEB_C ${CMAKE_BINARY_DIR}/gen/web_assets.c)
add_custom_command(OUTPUT ${SW_WEB_C}
  COMMAND ${CMAKE_COMMAND} -DDIR=${dir}/web -DOUT=${SW_WEB_C}
          -P ${CMAKE_SOURCE_DIR}/cmake/embed_web.cmake
  DEPENDS ${SW_WEB_FILES} ${CMAKE_SOURCE_DIR}/cmake/embed_web.cmake
  COMMENT "embedding the web page")
target_sources(spillway-server PRIVATE ${SW_WEB_C})
target_include_directories(spillway-server PRIVATE ${dir})
