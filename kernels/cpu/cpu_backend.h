/* cpu_backend.h — the CPU implementation of the backend interface (runtime/
 * backend.h). Buffers are 64-byte aligned host memory; ops run eagerly on a
 * persistent thread pool and return when done. Matmul kernels pick AVX2+FMA+F16C
 * at run time when the CPU has them, else portable scalar code; setting the
 * environment variable SW_CPU_NO_SIMD=1 before creating the backend forces the
 * scalar path (tests use it to check both).
 *
 * A backend is driven by one thread at a time (it keeps one scratch area and
 * one thread pool); use one backend per concurrent caller. */
#ifndef SW_CPU_BACKEND_H
#define SW_CPU_BACKEND_H

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* n_threads <= 0: number of online cores. *out is returned (free with
 * sw_backend_free). */
sw_status sw_backend_cpu_create(int n_threads, sw_backend **out, sw_err *err);

/* Whether this CPU backend runs the AVX2 kernels (false: scalar fallback).
 * be must be a CPU backend. */
bool sw_backend_cpu_uses_simd(const sw_backend *be);

#ifdef __cplusplus
}
#endif
#endif
