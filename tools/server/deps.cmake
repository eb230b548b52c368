# spillway-server: libmicrohttpd for HTTP (libcurl comes with libspillway,
# for the --hf downloader).
if(NOT TARGET sw::MHD)
  message(FATAL_ERROR "spillway-server needs libmicrohttpd (run scripts/install-deps.sh)")
endif()
target_link_libraries(spillway-server PRIVATE sw::MHD)
