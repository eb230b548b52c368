/* stb_ds.c — the one definition of stb_ds (Debian's libstb-dev) in
 * libspillway: hash maps and dynamic arrays for any module, which includes
 * "sw_stb_ds.h" and never defines STB_DS_IMPLEMENTATION itself. */
#define STB_DS_IMPLEMENTATION
#include "sw_stb_ds.h"
