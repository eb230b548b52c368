/* jinja_stb.c — the one compiled copy of stb_ds (Debian's libstb-dev) for the
 * Jinja interpreter. Its byte hash shifts unsigned chars promoted to int by 24
 * (UB for bytes >= 0x80 in ISO C, harmless on every target we build for), so
 * CMakeLists.txt builds this file without UBSan's shift check. */
#define STB_DS_IMPLEMENTATION
#include "jinja_stb.h"
