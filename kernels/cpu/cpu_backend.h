/* cpu_backend.h — the CPU implementation of the backend interface (runtime/
 * backend.h). Buffers are 64-byte aligned host memory; ops run eagerly on a
 * persistent thread pool and return when done.
 *
 * Kernel sets (ISAs) are chosen at run time from cpuid, never at build time:
 * AVX-512 with VNNI (512-bit VPDPBUSD) where the CPU and OS support it, else
 * AVX-VNNI (256-bit VPDPBUSD), else AVX2 + FMA + F16C, else portable scalar C.
 * The environment variable SW_CPU_ISA=scalar|avx2|avxvnni|avx512|auto, read
 * when a backend is created, forces one (tests use it to run every path the
 * host has); SW_CPU_NO_SIMD=1 is the older spelling of SW_CPU_ISA=scalar.
 *
 * A backend is driven by one thread at a time (it keeps one scratch area and
 * one thread pool); use one backend per concurrent caller. */
#ifndef SW_CPU_BACKEND_H
#define SW_CPU_BACKEND_H

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The CPU kernel sets, each a superset of the features of the one before. */
typedef enum {
    SW_CPU_ISA_SCALAR = 0, /* portable C */
    SW_CPU_ISA_AVX2,       /* AVX2 + FMA + F16C; weights packed 8 rows at a time */
    SW_CPU_ISA_AVXVNNI,    /* the above + AVX-VNNI (VEX 256-bit VPDPBUSD) */
    SW_CPU_ISA_AVX512,     /* AVX-512 F/BW/VL/DQ + VNNI; weights packed 16 rows at a time */
    SW_CPU_ISA_COUNT
} sw_cpu_isa;

/* "scalar", "avx2", "avxvnni", "avx512" (the SW_CPU_ISA spellings). */
const char *sw_cpu_isa_name(sw_cpu_isa isa);

/* Whether this CPU and OS can run isa's kernels; if not, why (may be NULL)
 * names the missing feature, e.g. "host lacks avx512_vnni". */
bool sw_cpu_isa_available(sw_cpu_isa isa, char *why, size_t why_len);

/* The best kernel set this host can run. */
sw_cpu_isa sw_cpu_isa_best(void);

/* n_threads <= 0: number of online cores. *out is returned (free with
 * sw_backend_free). Fails with SW_E_UNSUPPORTED when SW_CPU_ISA names an ISA
 * this host cannot run, SW_E_INVALID_ARG when it names none. */
sw_status sw_backend_cpu_create(int n_threads, sw_backend **out, sw_err *err);

/* The same with the kernel set given (ignores SW_CPU_ISA). */
sw_status sw_backend_cpu_create_isa(int n_threads, sw_cpu_isa isa, sw_backend **out, sw_err *err);

/* The kernel set a CPU backend runs; be must be a CPU backend. */
sw_cpu_isa sw_backend_cpu_isa(const sw_backend *be);

/* Whether this CPU backend runs SIMD kernels (any ISA but scalar). */
bool sw_backend_cpu_uses_simd(const sw_backend *be);

/* The thread pool the backend's ops run on (borrowed; be must be a CPU
 * backend). spillway-bench runs its peak probes on it, so they use the same
 * threads as the kernels. */
struct sw_threadpool *sw_backend_cpu_threadpool(sw_backend *be);

#ifdef __cplusplus
}
#endif
#endif
