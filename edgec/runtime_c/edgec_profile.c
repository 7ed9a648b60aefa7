/* edgec per-layer profiling: reading the table the generated code fills (edgec_profile.h).
 * Compiled only into bundles built with --profile. No malloc; clock_gettime is the only libc
 * call (the armv7 timer and the TSC calibration). */
#define _POSIX_C_SOURCE 199309L
#include <time.h>

#include "edgec_profile.h"

/* Must equal EDGEC_CTX_MAGIC in edgec_runtime.c (tests/runtime/test_profile.py checks). */
#define EDGEC_PROFILE_CTX_MAGIC 0xED6EC0DEu

uint64_t edgec_profile_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static edgec_profile_entry *table(const edgec_ctx *ctx, const edgec_profile_info *p, edgec_status *s) {
  *s = EDGEC_OK;
  if (!ctx || !p) *s = EDGEC_ERR_NULL;
  else if (ctx->magic != EDGEC_PROFILE_CTX_MAGIC || !ctx->info || !ctx->arena) *s = EDGEC_ERR_STATE;
  else if (p->num_kernels < 0 || p->table_offset % 8 != 0 ||
           p->table_offset + (size_t)p->num_kernels * sizeof(edgec_profile_entry) > ctx->arena_bytes)
    *s = EDGEC_ERR_SIZE; /* cannot happen for a ctx that init accepted: the arena holds the table */
  return *s == EDGEC_OK ? (edgec_profile_entry *)(void *)(ctx->arena + p->table_offset) : 0;
}

edgec_status edgec_profile_read(const edgec_ctx *ctx, const edgec_profile_info *p,
                                edgec_profile_entry *out, int32_t n) {
  edgec_status s;
  const edgec_profile_entry *t = table(ctx, p, &s);
  if (s != EDGEC_OK) return s;
  if (!out) return EDGEC_ERR_NULL;
  if (n < p->num_kernels) return EDGEC_ERR_SIZE;
  for (int32_t k = 0; k < p->num_kernels; ++k) out[k] = t[k];
  return EDGEC_OK;
}

edgec_status edgec_profile_reset(edgec_ctx *ctx, const edgec_profile_info *p) {
  edgec_status s;
  edgec_profile_entry *t = table(ctx, p, &s);
  if (s != EDGEC_OK) return s;
  for (int32_t k = 0; k < p->num_kernels; ++k) t[k].ticks = t[k].calls = 0;
  return EDGEC_OK;
}

#if defined(__x86_64__)
static uint64_t read_tsc(void) {
  uint32_t lo, hi;
  __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
  return ((uint64_t)hi << 32) | lo;
}

/* A (TSC, ns) pair read close together: of 5 tries, the one with the fewest ticks around the
 * clock read (a thread preempted between the two reads would skew the rate). */
static void tsc_and_clock(uint64_t *tsc, uint64_t *ns) {
  uint64_t best = ~(uint64_t)0;
  for (int i = 0; i < 5; ++i) {
    uint64_t a = read_tsc(), t = edgec_profile_now(), b = read_tsc();
    if (b - a < best) {
      best = b - a;
      *tsc = a + (b - a) / 2;
      *ns = t;
    }
  }
}
#endif

uint64_t edgec_profile_ticks_per_second(edgec_timer timer) {
  switch (timer) {
    case EDGEC_TIMER_CLOCK: return 1000000000u;
    case EDGEC_TIMER_CNTVCT: {
#if defined(__aarch64__)
      uint64_t f;
      __asm__ __volatile__("mrs %0, cntfrq_el0" : "=r"(f));
      return f;
#else
      return 0;
#endif
    }
    case EDGEC_TIMER_TSC: {
#if defined(__x86_64__)
      uint64_t t0, c0, t1, c1;
      tsc_and_clock(&c0, &t0);
      while (edgec_profile_now() - t0 < 20000000u) {
      } /* ~20 ms: the clock's ~50 ns steps are then a few ppm */
      tsc_and_clock(&c1, &t1);
      return (uint64_t)((double)(c1 - c0) * 1e9 / (double)(t1 - t0) + 0.5);
#else
      return 0;
#endif
    }
  }
  return 0;
}
