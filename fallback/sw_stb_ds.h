/* sw_stb_ds.h — include Debian's stb_ds.h (hash maps, dynamic arrays) in
 * C11 code: its GCC path spells __typeof__ as `typeof`, which -std=c11 does
 * not define. The implementation is compiled once, in stb_ds.c. */
#ifndef SW_STB_DS_H
#define SW_STB_DS_H

#if defined(__GNUC__) && !defined(__clang__) && !defined(typeof)
#define typeof __typeof__
#endif
#include <stb/stb_ds.h>

#endif
