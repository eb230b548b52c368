/* threadpool.c — persistent worker pool (see threadpool.h).
 *
 * Protocol. The caller publishes a job (fn, ctx, n_tasks, task counter reset),
 * opens the gate, and bumps a generation counter that wakes the workers. The
 * gate is one atomic word: an OPEN bit plus the number of workers currently
 * inside the job. A worker joins only by a CAS that sees OPEN, so it reads the
 * job fields only while the caller guarantees them stable. Everyone then claims
 * tasks with fetch_add on the counter. When the caller runs out of tasks it
 * clears OPEN and waits for the workers still inside (they are running, so the
 * wait is short); workers that wake later see the gate closed and go back to
 * sleep without touching the job.
 *
 * Waiting: workers spin briefly on the generation before sleeping on a
 * condition variable (decode issues hundreds of small ops per step and a futex
 * wake-up costs microseconds); the caller waits for the last worker the same
 * way. */
#include "threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define SW_TP_SPIN 4000 /* pause iterations before sleeping (~tens of microseconds) */
#define GATE_OPEN 0x40000000

struct sw_threadpool {
    int n_threads;      /* including the caller */
    pthread_t *workers; /* [n_threads - 1] */
    int n_started;

    pthread_mutex_t mu;
    pthread_cond_t cv_job;  /* workers wait here for a new generation */
    pthread_cond_t cv_done; /* the caller waits here for the gate to empty */

    atomic_uint gen; /* bumped once per job (and at shutdown) */
    atomic_int gate; /* GATE_OPEN | number of workers inside the job */
    atomic_bool stop;

    /* the current job: written by the caller only while the gate is closed and
     * empty; read by workers only after joining */
    sw_tp_fn fn;
    void *ctx;
    int64_t n_tasks;
    int64_t step;      /* tasks per claim */
    atomic_llong next; /* next unclaimed task */
};

typedef struct {
    sw_threadpool *tp;
    int slot; /* 1..n_threads-1 */
} worker_arg;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Tasks are claimed `step` at a time: with hundreds of tiny tasks per op (a
 * row of a 64-wide norm, one attention row of a small head) the claims
 * themselves -- an atomic on a cache line that bounces between cores -- cost
 * as much as the work. step keeps about 8 claims per thread, enough for the
 * others to take over from a thread that gets descheduled. */
static void run_tasks(sw_threadpool *tp, int slot) {
    int64_t step = tp->step;
    for (;;) {
        int64_t t = atomic_fetch_add_explicit(&tp->next, step, memory_order_relaxed);
        if (t >= tp->n_tasks) break;
        int64_t end = t + step < tp->n_tasks ? t + step : tp->n_tasks;
        for (; t < end; t++)
            tp->fn(tp->ctx, t, slot);
    }
}

static bool try_join(sw_threadpool *tp) {
    int g = atomic_load_explicit(&tp->gate, memory_order_acquire);
    while (g & GATE_OPEN)
        if (atomic_compare_exchange_weak_explicit(&tp->gate, &g, g + 1, memory_order_acq_rel,
                                                  memory_order_acquire))
            return true;
    return false;
}

static void leave(sw_threadpool *tp) {
    int g = atomic_fetch_sub_explicit(&tp->gate, 1, memory_order_acq_rel) - 1;
    if (g == 0) { /* closed and empty: the caller may be asleep waiting for this */
        pthread_mutex_lock(&tp->mu);
        pthread_cond_signal(&tp->cv_done);
        pthread_mutex_unlock(&tp->mu);
    }
}

static void *worker_main(void *p) {
    worker_arg *wa = p;
    sw_threadpool *tp = wa->tp;
    int slot = wa->slot;
    free(wa);
    unsigned seen = 0;
    for (;;) {
        unsigned g = atomic_load_explicit(&tp->gen, memory_order_acquire);
        for (int i = 0; g == seen && i < SW_TP_SPIN; i++) {
            cpu_relax();
            g = atomic_load_explicit(&tp->gen, memory_order_acquire);
        }
        if (g == seen) {
            pthread_mutex_lock(&tp->mu);
            while ((g = atomic_load_explicit(&tp->gen, memory_order_acquire)) == seen &&
                   !atomic_load(&tp->stop))
                pthread_cond_wait(&tp->cv_job, &tp->mu);
            pthread_mutex_unlock(&tp->mu);
        }
        if (atomic_load(&tp->stop)) break;
        seen = g;
        if (try_join(tp)) {
            run_tasks(tp, slot);
            leave(tp);
        }
    }
    return NULL;
}

sw_status sw_threadpool_create(int n_threads, sw_threadpool **out, sw_err *err) {
    *out = NULL;
    if (n_threads < 1 || n_threads > 4096)
        return sw_err_set(err, SW_E_INVALID_ARG, "threadpool: n_threads %d out of range [1, 4096]",
                          n_threads);
    sw_threadpool *tp = calloc(1, sizeof *tp);
    if (!tp) return sw_err_set(err, SW_E_NOMEM, "threadpool: out of memory");
    tp->n_threads = n_threads;
    pthread_mutex_init(&tp->mu, NULL);
    pthread_cond_init(&tp->cv_job, NULL);
    pthread_cond_init(&tp->cv_done, NULL);
    atomic_init(&tp->gen, 0);
    atomic_init(&tp->gate, 0);
    atomic_init(&tp->stop, false);
    atomic_init(&tp->next, 0);
    if (n_threads > 1) {
        tp->workers = calloc((size_t)n_threads - 1, sizeof *tp->workers);
        if (!tp->workers) {
            sw_threadpool_free(tp);
            return sw_err_set(err, SW_E_NOMEM, "threadpool: out of memory");
        }
    }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa) {
            sw_threadpool_free(tp);
            return sw_err_set(err, SW_E_NOMEM, "threadpool: out of memory");
        }
        wa->tp = tp;
        wa->slot = i;
        int rc = pthread_create(&tp->workers[i - 1], NULL, worker_main, wa);
        if (rc != 0) {
            free(wa);
            sw_threadpool_free(tp);
            return sw_err_set(err, SW_E_BACKEND, "threadpool: pthread_create for worker %d: %s", i,
                              strerror(rc));
        }
        tp->n_started++;
    }
    *out = tp;
    return SW_OK;
}

void sw_threadpool_free(sw_threadpool *tp) {
    if (!tp) return;
    pthread_mutex_lock(&tp->mu);
    atomic_store(&tp->stop, true);
    atomic_fetch_add(&tp->gen, 1);
    pthread_cond_broadcast(&tp->cv_job);
    pthread_mutex_unlock(&tp->mu);
    for (int i = 0; i < tp->n_started; i++)
        pthread_join(tp->workers[i], NULL);
    free(tp->workers);
    pthread_cond_destroy(&tp->cv_done);
    pthread_cond_destroy(&tp->cv_job);
    pthread_mutex_destroy(&tp->mu);
    free(tp);
}

int sw_threadpool_n_threads(const sw_threadpool *tp) {
    return tp ? tp->n_threads : 1;
}

void sw_threadpool_run(sw_threadpool *tp, sw_tp_fn fn, void *ctx, int64_t n_tasks) {
    if (!tp || tp->n_threads == 1 || n_tasks <= 1) {
        for (int64_t t = 0; t < n_tasks; t++)
            fn(ctx, t, 0);
        return;
    }
    /* the gate is closed and empty here: the job fields are ours */
    tp->fn = fn;
    tp->ctx = ctx;
    tp->n_tasks = n_tasks;
    tp->step = n_tasks / (8 * (int64_t)tp->n_threads);
    if (tp->step < 1) tp->step = 1;
    atomic_store_explicit(&tp->next, 0, memory_order_relaxed);
    atomic_store_explicit(&tp->gate, GATE_OPEN, memory_order_release);
    pthread_mutex_lock(&tp->mu);
    atomic_fetch_add_explicit(&tp->gen, 1, memory_order_release);
    pthread_cond_broadcast(&tp->cv_job);
    pthread_mutex_unlock(&tp->mu);

    run_tasks(tp, 0);

    /* close the gate; wait only for the workers already inside */
    int inside =
        atomic_fetch_and_explicit(&tp->gate, ~GATE_OPEN, memory_order_acq_rel) & ~GATE_OPEN;
    if (inside == 0) return;
    for (int i = 0; i < SW_TP_SPIN; i++) {
        if (atomic_load_explicit(&tp->gate, memory_order_acquire) == 0) return;
        cpu_relax();
    }
    pthread_mutex_lock(&tp->mu);
    while (atomic_load_explicit(&tp->gate, memory_order_acquire) != 0)
        pthread_cond_wait(&tp->cv_done, &tp->mu);
    pthread_mutex_unlock(&tp->mu);
}
