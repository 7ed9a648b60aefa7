/* edgec thread pool: workers started once at init (never per inference), tasks handed out by a
 * shared ticket so a slow or descheduled core does not hold the others back. The pool lives
 * inside the caller's edgec_ctx (no malloc). Only compiled into bundles built with --threads > 1.
 *
 * One parallel_for is one generation. The caller publishes the job (fn, args) and then the
 * ticket word: generation << 32 | num_tasks << 16 | next task. Everyone (the caller included)
 * claims tasks with a compare-and-swap on the ticket, which fails once the generation moved on,
 * so a worker that wakes late can never run a stale job. The caller only waits for tasks that
 * were claimed and not yet finished: a worker that is asleep or descheduled costs it nothing
 * (it runs the unclaimed tasks itself). Waits spin for a bounded time (EDGEC_SPIN_NS, with a
 * pause/yield instruction) and then block on a condition variable (futex); no timed sleeps. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <time.h>

#include "edgec_runtime.h"

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t wake;  /* workers block here between jobs */
  pthread_cond_t done;  /* the caller blocks here while claimed tasks finish */
  pthread_t workers[EDGEC_MAX_THREADS - 1];
  int num_workers;
  uint32_t generation;  /* caller-private count of jobs */
  edgec_task_fn fn;     /* the current job (atomic, relaxed: the ticket orders it) */
  void *args;
  uint64_t ticket;      /* generation << 32 | num_tasks << 16 | next task (atomic) */
  int32_t remaining;    /* tasks of the current job not finished yet (atomic) */
  int32_t sleepers;     /* workers blocked, or about to block, on `wake` (atomic) */
  int32_t caller_waits; /* the caller is blocked, or about to block, on `done` (atomic) */
  int32_t stop;         /* set by edgec_pool_stop (atomic) */
} edgec_pool;

/* How long a thread spins before it blocks: kernels of one run follow each other within
 * microseconds (a futex wake-up costs tens), but a spinning thread takes a core from the others
 * (on a busy 2-core machine, from the very thread it waits for), so the spin is short. */
#define EDGEC_SPIN_NS 100000u
#define EDGEC_MAX_TASKS 0xffff
#if defined(__x86_64__) || defined(__i386__)
#define EDGEC_RELAX() __builtin_ia32_pause()
#elif defined(__aarch64__) || defined(__arm__)
#define EDGEC_RELAX() __asm__ __volatile__("yield")
#else
#define EDGEC_RELAX() ((void)0)
#endif

typedef char edgec_pool_fits_in_ctx[sizeof(edgec_pool) <= sizeof(((edgec_ctx *)0)->pool_storage) ? 1 : -1];

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The spin budget: call after each relax; returns 0 once EDGEC_SPIN_NS have passed. The clock
 * is read every 32 polls only, and not at all when the wait ends within the first 32. */
static int keep_spinning(unsigned i, uint64_t *deadline) {
  if (i % 32u != 0) return 1;
  uint64_t t = now_ns();
  if (*deadline == 0) *deadline = t + EDGEC_SPIN_NS;
  return t < *deadline;
}

static uint32_t ticket_generation(uint64_t t) { return (uint32_t)(t >> 32); }

/* Claim the next task of job `gen`; 0 when the job has none left or is over. */
static int claim(edgec_pool *p, uint32_t gen, int32_t *task, int32_t *num_tasks) {
  uint64_t t = __atomic_load_n(&p->ticket, __ATOMIC_ACQUIRE);
  for (;;) {
    uint32_t n = (uint32_t)(t >> 16) & 0xffffu, next = (uint32_t)t & 0xffffu;
    if (ticket_generation(t) != gen || next >= n) return 0;
    if (__atomic_compare_exchange_n(&p->ticket, &t, t + 1, 1, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
      *task = (int32_t)next;
      *num_tasks = (int32_t)n;
      return 1;
    }
  }
}

/* Run tasks of job `gen` until none is left to claim. fn and args are read before the first
 * claim: a claim of job `gen` succeeds only while that job is unfinished, i.e. before the
 * caller can have written the next job. */
static void run_tasks(edgec_pool *p, uint32_t gen) {
  edgec_task_fn fn = __atomic_load_n(&p->fn, __ATOMIC_RELAXED);
  void *args = __atomic_load_n(&p->args, __ATOMIC_RELAXED);
  int32_t task, n;
  while (claim(p, gen, &task, &n)) {
    fn(args, task, n);
    if (__atomic_sub_fetch(&p->remaining, 1, __ATOMIC_SEQ_CST) == 0 &&
        __atomic_load_n(&p->caller_waits, __ATOMIC_SEQ_CST)) {
      pthread_mutex_lock(&p->mu); /* the caller holds mu until it sleeps: no lost signal */
      pthread_cond_signal(&p->done);
      pthread_mutex_unlock(&p->mu);
    }
  }
}

/* Wait until a job newer than `seen` is published (its generation) or the pool stops (-1). */
static int64_t wait_for_job(edgec_pool *p, uint32_t seen) {
  uint64_t deadline = 0;
  for (unsigned i = 1;; ++i) {
    if (__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) return -1;
    uint32_t g = ticket_generation(__atomic_load_n(&p->ticket, __ATOMIC_ACQUIRE));
    if (g != seen) return g;
    EDGEC_RELAX();
    if (!keep_spinning(i, &deadline)) break;
  }
  pthread_mutex_lock(&p->mu);
  __atomic_add_fetch(&p->sleepers, 1, __ATOMIC_SEQ_CST);
  uint32_t g;
  while ((g = ticket_generation(__atomic_load_n(&p->ticket, __ATOMIC_SEQ_CST))) == seen &&
         !__atomic_load_n(&p->stop, __ATOMIC_SEQ_CST))
    pthread_cond_wait(&p->wake, &p->mu);
  __atomic_sub_fetch(&p->sleepers, 1, __ATOMIC_SEQ_CST);
  int stop = __atomic_load_n(&p->stop, __ATOMIC_SEQ_CST);
  pthread_mutex_unlock(&p->mu);
  return stop ? -1 : (int64_t)g;
}

static void *worker_main(void *arg) {
  edgec_pool *p = (edgec_pool *)arg;
  uint32_t seen = 0;
  for (;;) {
    int64_t g = wait_for_job(p, seen);
    if (g < 0) return 0;
    seen = (uint32_t)g;
    run_tasks(p, seen);
  }
}

int edgec_pool_start(edgec_ctx *ctx, int num_threads) {
  edgec_pool *p = (edgec_pool *)(void *)ctx->pool_storage;
  p->num_workers = 0;
  p->generation = 0;
  p->fn = 0;
  p->args = 0;
  p->ticket = 0;
  p->remaining = 0;
  p->sleepers = 0;
  p->caller_waits = 0;
  p->stop = 0;
  if (pthread_mutex_init(&p->mu, 0) != 0) return -1;
  if (pthread_cond_init(&p->wake, 0) != 0) {
    pthread_mutex_destroy(&p->mu);
    return -1;
  }
  if (pthread_cond_init(&p->done, 0) != 0) {
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->mu);
    return -1;
  }
  ctx->pool = p;
  for (int i = 0; i < num_threads - 1; ++i) {
    if (pthread_create(&p->workers[i], 0, worker_main, p) != 0) {
      edgec_pool_stop(ctx);
      return -1;
    }
    p->num_workers++;
  }
  return 0;
}

void edgec_pool_stop(edgec_ctx *ctx) {
  edgec_pool *p = (edgec_pool *)ctx->pool;
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  __atomic_store_n(&p->stop, 1, __ATOMIC_SEQ_CST);
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);
  for (int i = 0; i < p->num_workers; ++i) pthread_join(p->workers[i], 0);
  pthread_cond_destroy(&p->wake);
  pthread_cond_destroy(&p->done);
  pthread_mutex_destroy(&p->mu);
  ctx->pool = 0;
}

void edgec_parallel_for(void *pool, edgec_task_fn fn, void *args, int32_t num_tasks) {
  edgec_pool *p = (edgec_pool *)pool;
  if (!p || p->num_workers == 0 || num_tasks <= 1 || num_tasks > EDGEC_MAX_TASKS) {
    for (int32_t t = 0; t < num_tasks; ++t) fn(args, t, num_tasks);
    return;
  }
  uint32_t gen = ++p->generation;
  if (gen == 0) gen = p->generation = 1; /* workers start having "seen" generation 0 */
  __atomic_store_n(&p->fn, fn, __ATOMIC_RELAXED);
  __atomic_store_n(&p->args, args, __ATOMIC_RELAXED);
  __atomic_store_n(&p->remaining, num_tasks, __ATOMIC_RELAXED);
  __atomic_store_n(&p->ticket, (uint64_t)gen << 32 | (uint64_t)num_tasks << 16, __ATOMIC_SEQ_CST);
  int32_t asleep = __atomic_load_n(&p->sleepers, __ATOMIC_SEQ_CST);
  if (asleep > 0) { /* wake only as many sleepers as there are tasks for */
    pthread_mutex_lock(&p->mu);
    if (asleep <= num_tasks - 1) pthread_cond_broadcast(&p->wake);
    else
      for (int32_t i = 0; i < num_tasks - 1; ++i) pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->mu);
  }
  /* The caller works too: it starts on task 0 and takes whatever nobody else claimed. */
  int32_t task, n, mine = 0;
  while (claim(p, gen, &task, &n)) {
    fn(args, task, n);
    ++mine;
  }
  if (__atomic_sub_fetch(&p->remaining, mine, __ATOMIC_SEQ_CST) == 0) return;
  uint64_t deadline = 0;
  for (unsigned i = 1; __atomic_load_n(&p->remaining, __ATOMIC_ACQUIRE) != 0; ++i) {
    EDGEC_RELAX();
    if (!keep_spinning(i, &deadline)) break;
  }
  if (__atomic_load_n(&p->remaining, __ATOMIC_ACQUIRE) == 0) return;
  pthread_mutex_lock(&p->mu);
  __atomic_store_n(&p->caller_waits, 1, __ATOMIC_SEQ_CST);
  while (__atomic_load_n(&p->remaining, __ATOMIC_SEQ_CST) != 0) pthread_cond_wait(&p->done, &p->mu);
  __atomic_store_n(&p->caller_waits, 0, __ATOMIC_SEQ_CST);
  pthread_mutex_unlock(&p->mu);
}
