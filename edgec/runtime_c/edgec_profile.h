/* edgec per-layer profiling: only in bundles built with `edgec build --profile`.
 *
 * The generated graph function reads a timer before the first kernel and after every kernel,
 * and adds each kernel's ticks and one call to its row of a fixed table at the end of the
 * caller's arena (<name>_profile_info.table_offset). No malloc, no locks: only the thread that
 * calls <name>_run writes the table (in threaded builds the timer spans the whole parallel
 * kernel). Bundles built without --profile contain none of this. See docs/profiling.md. */
#ifndef EDGEC_PROFILE_H
#define EDGEC_PROFILE_H

#include "edgec_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One row per kernel, in call order (the manifest's profile.layers has the same order). */
typedef struct {
  uint64_t ticks; /* timer ticks spent in the kernel, summed over its calls */
  uint64_t calls; /* times the kernel ran */
} edgec_profile_entry;

typedef enum {
  EDGEC_TIMER_CLOCK = 0,  /* clock_gettime(CLOCK_MONOTONIC) in ns through edgec_profile_now (armv7) */
  EDGEC_TIMER_CNTVCT = 1, /* aarch64 virtual counter cntvct_el0; frequency from cntfrq_el0 */
  EDGEC_TIMER_TSC = 2     /* x86-64 rdtsc; frequency calibrated against clock_gettime */
} edgec_timer;

typedef struct {
  int32_t num_kernels;
  size_t table_offset; /* bytes from the start of the arena, 64-byte aligned */
  edgec_timer timer;
} edgec_profile_info;

/* Copies the table (num_kernels rows) into out[0 .. n). EDGEC_ERR_SIZE when n < num_kernels. */
edgec_status edgec_profile_read(const edgec_ctx *ctx, const edgec_profile_info *p,
                                edgec_profile_entry *out, int32_t n);
/* Zeroes the table (init does this once). */
edgec_status edgec_profile_reset(edgec_ctx *ctx, const edgec_profile_info *p);
/* Timer ticks per second: 1e9 for the clock, cntfrq_el0 for cntvct, a ~20 ms calibration
 * against CLOCK_MONOTONIC for the TSC; 0 when unknown (a timer of another architecture). */
uint64_t edgec_profile_ticks_per_second(edgec_timer timer);
/* CLOCK_MONOTONIC in ns: the timer generated code calls on targets without a counter it reads. */
uint64_t edgec_profile_now(void);

#ifdef __cplusplus
}
#endif
#endif /* EDGEC_PROFILE_H */
