/* threadpool.h — a persistent pool of worker threads for the CPU backend.
 *
 * Workers are created once (sw_threadpool_create) and sleep between jobs, so an
 * op costs one wake-up, never a thread creation. A job is n_tasks independent
 * tasks; the calling thread and the workers take tasks one at a time from a
 * shared counter until none is left, and sw_threadpool_run returns when every
 * task is done.
 *
 * Tasks, not fixed per-thread shares: on a machine shared with other processes
 * a worker may not be scheduled for milliseconds. The caller then does the
 * work itself, and it never waits for a worker that has not started: a worker
 * that wakes after the caller has closed the job skips it (see threadpool.c).
 * One job at a time: a pool is driven by one caller thread. */
#ifndef SW_THREADPOOL_H
#define SW_THREADPOOL_H

#include "sw_base.h"

typedef struct sw_threadpool sw_threadpool;

/* Run task `task` in [0, n_tasks). slot in [0, pool size) is unique among the
 * threads running tasks of this job at the same time (the caller is slot 0),
 * for per-thread scratch. ctx is the caller's (borrowed). */
typedef void (*sw_tp_fn)(void *ctx, int64_t task, int slot);

/* n_threads >= 1 (the caller counts as one; n_threads - 1 workers are started). */
sw_status sw_threadpool_create(int n_threads, sw_threadpool **out, sw_err *err);
void sw_threadpool_free(sw_threadpool *tp); /* NULL is a no-op; joins the workers */
int sw_threadpool_n_threads(const sw_threadpool *tp);
/* Run fn for every task; returns when all have returned. n_tasks <= 1 runs on
 * the caller without waking anyone. tp NULL: everything on the caller. */
void sw_threadpool_run(sw_threadpool *tp, sw_tp_fn fn, void *ctx, int64_t n_tasks);

#endif
