/* Stress test of the runtime's thread pool (edgec_threads.c) through the public runtime API:
 * a fake model whose graph_run issues many parallel_for jobs of random size (0..MAX_TASKS tasks,
 * random task lengths) separated by random serial stretches, some longer than the pool's spin,
 * so workers are caught spinning, asleep, waking late and descheduled. Every job lives on the
 * stack at the same address (as the generated executor's argument arrays do), so a worker that
 * ran a stale job would show up as a task run twice or stamped with the wrong job. Checks:
 * each task runs exactly once, with the job's num_tasks, and its (plain, non-atomic) writes are
 * visible when parallel_for returns; pool threads do run tasks; init/run/deinit cycles with 2..16 threads on one ctx.
 * Usage: pool_stress RUNS_PER_CYCLE [LONG_GAP_ITERS]. Prints "<n> failures, <jobs> jobs". */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgec_runtime.h"

#define MAX_TASKS 40

typedef struct {
  unsigned job;
  int fn_id;
  int32_t num_tasks;
  int32_t hits[MAX_TASKS];   /* atomic increments */
  unsigned stamp[MAX_TASKS]; /* plain writes, published to the caller by the pool */
  unsigned work[MAX_TASKS];
} job_t;

static int failures;
static unsigned next_job;
static unsigned lcg = 12345u;
static unsigned long_gap = 300000u;
static pthread_t caller;
static int32_t by_caller, by_workers; /* tasks run by the caller / pool threads, per cycle */

static unsigned rnd(void) {
  lcg = lcg * 1103515245u + 12345u;
  return lcg >> 8;
}

static void busy(unsigned n) {
  volatile unsigned s = 0; /* local: threads do not share it */
  for (unsigned i = 0; i < n; ++i) s += i;
}

static void fail(const char *what, unsigned job, int32_t task) {
  if (__atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED) <= 10)
    printf("FAIL job %u task %d: %s\n", job, (int)task, what);
}

static void task_body(job_t *j, int fn_id, int32_t task, int32_t num_tasks) {
  if (j->fn_id != fn_id || num_tasks != j->num_tasks || task < 0 || task >= num_tasks) {
    fail("stale job: wrong function, arguments or num_tasks", j->job, task);
    return;
  }
  if (num_tasks > 1) /* jobs of 0 or 1 task run on the caller without the pool */
    __atomic_add_fetch(pthread_equal(pthread_self(), caller) ? &by_caller : &by_workers, 1,
                       __ATOMIC_RELAXED);
  __atomic_add_fetch(&j->hits[task], 1, __ATOMIC_RELAXED);
  busy(j->work[task]);
  j->stamp[task] = j->job;
}

/* Two task functions and two argument slots, alternated at random, as consecutive kernels. */
static void task_a(void *args, int32_t task, int32_t n) { task_body((job_t *)args, 0, task, n); }
static void task_b(void *args, int32_t task, int32_t n) { task_body((job_t *)args, 1, task, n); }

static void graph_run(void *arena, void *pool) {
  (void)arena;
  job_t slots[2];
  for (int k = 0; k < 40; ++k) {
    job_t *j = &slots[rnd() % 2];
    memset(j, 0, sizeof *j);
    j->job = ++next_job;
    j->fn_id = (int)(rnd() % 2);
    j->num_tasks = (int32_t)(rnd() % (MAX_TASKS + 1));
    for (int t = 0; t < MAX_TASKS; ++t) j->work[t] = rnd() % 4 == 0 ? rnd() % 20000u : rnd() % 200u;
    edgec_parallel_for(pool, j->fn_id ? task_b : task_a, j, j->num_tasks);
    for (int32_t t = 0; t < j->num_tasks; ++t) {
      if (__atomic_load_n(&j->hits[t], __ATOMIC_RELAXED) != 1) fail("task not run exactly once", j->job, t);
      if (j->stamp[t] != j->job) fail("task's writes not visible after parallel_for", j->job, t);
    }
    /* Serial stretches: mostly short (workers still spinning), some longer than the spin. */
    unsigned r = rnd() % 8;
    busy(r == 0 ? long_gap : r < 4 ? 0 : rnd() % 2000u);
  }
}

#define EXPECT(call, want) do { edgec_status s_ = (call); if (s_ != (want)) { \
  printf("FAIL line %d: %s -> %s\n", __LINE__, #call, edgec_status_str(s_)); failures++; } } while (0)

int main(int argc, char **argv) {
  int runs = argc > 1 ? atoi(argv[1]) : 20;
  if (argc > 2) long_gap = (unsigned)atoi(argv[2]);
  edgec_model_info info;
  memset(&info, 0, sizeof info);
  info.name = "pool_stress";
  info.graph_run = graph_run;
  info.max_threads = EDGEC_MAX_THREADS;
  static const int threads[] = {2, 3, 2, 4, EDGEC_MAX_THREADS, 2, 1};
  caller = pthread_self();
  edgec_ctx ctx;
  memset(&ctx, 0, sizeof ctx);
  for (size_t c = 0; c < sizeof threads / sizeof threads[0]; ++c) { /* re-init the same ctx */
    EXPECT(edgec_init(&ctx, &info, NULL, 0, threads[c]), EDGEC_OK);
    if ((ctx.pool != NULL) != (threads[c] > 1)) fail("pool presence", 0, threads[c]);
    by_caller = by_workers = 0;
    for (int r = 0; r < runs; ++r) EXPECT(edgec_run(&ctx), EDGEC_OK);
    /* On a loaded machine (2 cores, a parallel test run, TSan's slowdown) the caller may finish
     * every task of a few hundred jobs before a worker is scheduled at all; run more (bounded)
     * before calling that a pool that never wakes its workers. */
    for (int r = 0; r < 50 * runs && threads[c] > 1 && by_workers == 0; ++r) EXPECT(edgec_run(&ctx), EDGEC_OK);
    /* not a timing: over thousands of jobs both sides must have run tasks (the caller works
     * too; a pool that never wakes its workers, or threads that never run, fail here) */
    if (by_caller == 0) fail("the caller ran no task of a job of 2+ tasks", 0, threads[c]);
    if ((by_workers > 0) != (threads[c] > 1)) fail("pool threads ran no task (or ran some without a pool)", 0, threads[c]);
    EXPECT(edgec_deinit(&ctx), EDGEC_OK);
    if (ctx.pool != NULL) fail("pool not released by deinit", 0, threads[c]);
    EXPECT(edgec_run(&ctx), EDGEC_ERR_STATE);
  }
  EXPECT(edgec_init(&ctx, &info, NULL, 0, EDGEC_MAX_THREADS + 1), EDGEC_ERR_THREADS);
  printf("%d failures, %u jobs\n", failures, next_job);
  return failures != 0;
}
