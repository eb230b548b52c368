# Embed a binary file (SPIR-V) as a C array: -DIN=file -DOUT=header -DNAME=symbol
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR nbytes "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
file(WRITE ${OUT} "/* generated from ${IN} */\n#include <stddef.h>\n#include <stdint.h>\n")
file(APPEND ${OUT} "static const unsigned char ${NAME}[${nbytes}] __attribute__((aligned(4))) = {${body}};\n")
file(APPEND ${OUT} "static const size_t ${NAME}_len = ${nbytes};\n")
