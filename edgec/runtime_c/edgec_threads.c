/* edgec thread pool: workers started once at init (never per inference), tasks handed out by a
 * shared counter so a slow core does not hold the others back. The pool lives inside the
 * caller's edgec_ctx (no malloc). Only compiled into bundles built with --threads > 1. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>

#include "edgec_runtime.h"

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t wake, done;
  pthread_t workers[EDGEC_MAX_THREADS - 1];
  int num_workers;
  edgec_task_fn fn;
  void *args;
  int32_t num_tasks, next_task;
  int active;           /* workers that have not yet finished the current generation (atomic) */
  unsigned generation;  /* bumped for every parallel_for (written under mu, polled atomically) */
  int stop;
} edgec_pool;

/* Workers spin this many polls for the next parallel_for before sleeping on the condition
 * variable: kernels follow each other within microseconds, a futex wake-up costs tens. */
#define EDGEC_SPIN_POLLS 200000
#if defined(__x86_64__) || defined(__i386__)
#define EDGEC_RELAX() __builtin_ia32_pause()
#elif defined(__aarch64__) || defined(__arm__)
#define EDGEC_RELAX() __asm__ __volatile__("yield")
#else
#define EDGEC_RELAX() ((void)0)
#endif

typedef char edgec_pool_fits_in_ctx[sizeof(edgec_pool) <= sizeof(((edgec_ctx *)0)->pool_storage) ? 1 : -1];

/* Run tasks until none is left; called and returns with the mutex held. */
static void drain(edgec_pool *p) {
  while (p->next_task < p->num_tasks) {
    int32_t t = p->next_task++;
    pthread_mutex_unlock(&p->mu);
    p->fn(p->args, t, p->num_tasks);
    pthread_mutex_lock(&p->mu);
  }
}

static void *worker_main(void *arg) {
  edgec_pool *p = (edgec_pool *)arg;
  unsigned seen = 0;
  for (;;) {
    for (int i = 0; i < EDGEC_SPIN_POLLS; ++i) {
      if (__atomic_load_n(&p->generation, __ATOMIC_ACQUIRE) != seen || __atomic_load_n(&p->stop, __ATOMIC_ACQUIRE))
        break;
      EDGEC_RELAX();
    }
    pthread_mutex_lock(&p->mu);
    while (!p->stop && p->generation == seen) pthread_cond_wait(&p->wake, &p->mu);
    if (p->stop) break;
    seen = p->generation;
    drain(p);
    if (__atomic_sub_fetch(&p->active, 1, __ATOMIC_ACQ_REL) == 0) pthread_cond_signal(&p->done);
    pthread_mutex_unlock(&p->mu);
  }
  pthread_mutex_unlock(&p->mu);
  return 0;
}

int edgec_pool_start(edgec_ctx *ctx, int num_threads) {
  edgec_pool *p = (edgec_pool *)(void *)ctx->pool_storage;
  p->num_workers = 0;
  p->stop = 0;
  p->generation = 0;
  p->active = 0;
  p->num_tasks = p->next_task = 0;
  if (pthread_mutex_init(&p->mu, 0) != 0) return -1;
  if (pthread_cond_init(&p->wake, 0) != 0 || pthread_cond_init(&p->done, 0) != 0) return -1;
  for (int i = 0; i < num_threads - 1; ++i) {
    if (pthread_create(&p->workers[i], 0, worker_main, p) != 0) {
      ctx->pool = p;
      edgec_pool_stop(ctx);
      return -1;
    }
    p->num_workers++;
  }
  ctx->pool = p;
  return 0;
}

void edgec_pool_stop(edgec_ctx *ctx) {
  edgec_pool *p = (edgec_pool *)ctx->pool;
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->stop = 1;
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
  if (!p || p->num_workers == 0 || num_tasks <= 1) {
    for (int32_t t = 0; t < num_tasks; ++t) fn(args, t, num_tasks);
    return;
  }
  pthread_mutex_lock(&p->mu);
  p->fn = fn;
  p->args = args;
  p->num_tasks = num_tasks;
  p->next_task = 0;
  __atomic_store_n(&p->active, p->num_workers, __ATOMIC_RELEASE);
  __atomic_add_fetch(&p->generation, 1, __ATOMIC_ACQ_REL);
  pthread_cond_broadcast(&p->wake);
  drain(p);
  pthread_mutex_unlock(&p->mu);
  for (int i = 0; i < EDGEC_SPIN_POLLS && __atomic_load_n(&p->active, __ATOMIC_ACQUIRE) > 0; ++i) EDGEC_RELAX();
  pthread_mutex_lock(&p->mu);
  while (p->active > 0) pthread_cond_wait(&p->done, &p->mu);
  pthread_mutex_unlock(&p->mu);
}
