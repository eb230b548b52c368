# Embed every file of a folder as C arrays with a table of them:
#   cmake -DDIR=tools/server/web -DOUT=web_assets.c -P embed_web.cmake
# The table is `const srv_web_asset srv_web_assets[]` (web.h) plus
# `srv_web_n_assets`; each entry names the file, not its path.
file(GLOB files LIST_DIRECTORIES false "${DIR}/*")
list(SORT files)
file(WRITE ${OUT} "/* generated from ${DIR} by cmake/embed_web.cmake */\n#include \"web.h\"\n\n")
set(table "")
set(i 0)
foreach(f ${files})
  get_filename_component(name ${f} NAME)
  file(READ ${f} hex HEX)
  string(LENGTH "${hex}" n)
  math(EXPR nbytes "${n} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
  file(APPEND ${OUT} "static const unsigned char asset_${i}[${nbytes} + 1] = {${body}0x00};\n")
  string(APPEND table "    {\"${name}\", asset_${i}, ${nbytes}},\n")
  math(EXPR i "${i} + 1")
endforeach()
file(APPEND ${OUT} "\nconst srv_web_asset srv_web_assets[] = {\n${table}};\n")
file(APPEND ${OUT} "const size_t srv_web_n_assets = ${i};\n")
