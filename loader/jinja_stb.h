/* jinja_stb.h — stb_ds.h (Debian's libstb-dev) for the Jinja interpreter. In
 * strict C11 gcc spells typeof only as __typeof__, which stb_ds's hash-map
 * macros need. The implementation is compiled once, in jinja_stb.c. */
#ifndef SW_JINJA_STB_H
#define SW_JINJA_STB_H
#if defined(__GNUC__) && !defined(typeof)
#define typeof __typeof__
#endif
#include <stb_ds.h>
#endif
