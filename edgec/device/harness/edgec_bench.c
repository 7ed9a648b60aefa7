/* edgec_bench: device-side benchmark harness, linked with one bundle's static library.
 *
 * Build (edgec.device.bench does this with the bundle's toolchain):
 *   cc -std=c99 -O2 -DEDGEC_PREFIX=model -I BUNDLE/include edgec_bench.c BUNDLE/lib/libmodel.a -static
 *
 * usage: edgec_bench [--runs N] [--warmup N] [--min-time SECONDS] [--max-runs N] [--threads T]
 *                    [--seed S] [--input FILE]... [--output-dir DIR]
 *   Runs the model `warmup` times untimed, then at least `runs` times and for at least
 *   `min-time` seconds (whichever is longer, capped at `max-runs`), timing each run with
 *   clock_gettime(CLOCK_MONOTONIC). Inputs are seeded pseudo-random values (splitmix64; the
 *   host mirrors the generator in edgec.device.bench.harness_inputs) or raw files, one per
 *   input in order. Prints ONE JSON line on stdout: min/median/mean/p90/max in microseconds,
 *   runs, threads and an FNV-1a 64 checksum of all output bytes; errors go to stderr with a
 *   non-zero exit (2 = usage, 1 = runtime). --output-dir writes out<i>.bin (raw bytes).
 *
 * Compiled with -DEDGEC_BENCH_PROFILE=1 for a bundle built with `edgec build --profile`, the
 * line also holds "profile": the per-kernel table over the timed runs (reset after the
 * warm-up, so every kernel's calls equal the runs), the timer's ticks per second, the CPU's
 * maximum clock when cpufreq tells it, and the per-kernel ticks of one representative run (of
 * up to 5 extra runs, the one closest to the median time). See docs/profiling.md.
 */
#define _POSIX_C_SOURCE 199309L
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef EDGEC_PREFIX
#define EDGEC_PREFIX model
#endif
#define EB_CAT_(a, b) a##b
#define EB_CAT(a, b) EB_CAT_(a, b)
#define EB_STR_(x) #x
#define EB_STR(x) EB_STR_(x)
#define FN(suffix) EB_CAT(EDGEC_PREFIX, suffix)
#include EB_STR(EDGEC_PREFIX.h)

#define HARNESS_VERSION 1
#define MAX_INPUT_FILES 64

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}

static uint64_t splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* k/1024 for k in [-1024, 1024) as IEEE half bits (exact: every such value is a normal half). */
static uint16_t half_from_k(int k) {
  uint16_t sign = k < 0 ? 0x8000u : 0;
  unsigned m = (unsigned)(k < 0 ? -k : k), e = 0;
  if (m == 0) return 0;
  while ((m >> (e + 1)) != 0) ++e;  /* 2^e <= m < 2^(e+1), value = m * 2^-10 */
  return (uint16_t)(sign | ((e + 5u) << 10) | (((m - (1u << e)) << (10 - e)) & 0x3FFu));
}

static size_t dtype_size(edgec_dtype dt) {
  switch (dt) {
    case EDGEC_U8: case EDGEC_I8: case EDGEC_BOOL: return 1;
    case EDGEC_U16: case EDGEC_I16: case EDGEC_F16: return 2;
    case EDGEC_F32: case EDGEC_I32: case EDGEC_U32: return 4;
    default: return 8;
  }
}

/* One splitmix64 draw per element, one stream across all inputs in order. Floats are uniform
 * in [-1, 1) with 24 (f32/f64) or 11 (f16) random bits; signed ints in [-8, 8); unsigned in
 * [0, 16); bool 0/1. */
static void fill_random(void *dst, edgec_dtype dt, size_t bytes, uint64_t *state) {
  size_t n = bytes / dtype_size(dt);
  for (size_t i = 0; i < n; ++i) {
    uint64_t z = splitmix64(state);
    double f = (double)(z >> 40) * (1.0 / 8388608.0) - 1.0;
    int64_t s = (int64_t)(z >> 60) - 8;
    uint64_t u = z >> 60;
    switch (dt) {
      case EDGEC_F32: ((float *)dst)[i] = (float)f; break;
      case EDGEC_F64: ((double *)dst)[i] = f; break;
      case EDGEC_F16: ((uint16_t *)dst)[i] = half_from_k((int)(z >> 53) - 1024); break;
      case EDGEC_I8: ((int8_t *)dst)[i] = (int8_t)s; break;
      case EDGEC_I16: ((int16_t *)dst)[i] = (int16_t)s; break;
      case EDGEC_I32: ((int32_t *)dst)[i] = (int32_t)s; break;
      case EDGEC_I64: ((int64_t *)dst)[i] = s; break;
      case EDGEC_U8: ((uint8_t *)dst)[i] = (uint8_t)u; break;
      case EDGEC_U16: ((uint16_t *)dst)[i] = (uint16_t)u; break;
      case EDGEC_U32: ((uint32_t *)dst)[i] = (uint32_t)u; break;
      case EDGEC_U64: ((uint64_t *)dst)[i] = u; break;
      case EDGEC_BOOL: ((uint8_t *)dst)[i] = (uint8_t)(z >> 63); break;
    }
  }
}

static int read_exact(const char *path, void *dst, size_t bytes) {
  FILE *f = fopen(path, "rb");
  if (!f) { fprintf(stderr, "edgec_bench: cannot open %s: %s\n", path, strerror(errno)); return 0; }
  size_t got = fread(dst, 1, bytes, f);
  int extra = fgetc(f) != EOF;
  fclose(f);
  if (got != bytes || extra) {
    fprintf(stderr, "edgec_bench: %s must hold exactly %zu bytes\n", path, bytes);
    return 0;
  }
  return 1;
}

static uint64_t fnv1a64(uint64_t h, const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001B3ull;
  return h;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void json_string(const char *s) {
  putchar('"');
  for (; *s; ++s) {
    if (*s == '"' || *s == '\\') printf("\\%c", *s);
    else if ((unsigned char)*s < 0x20) printf("\\u%04x", (unsigned char)*s);
    else putchar(*s);
  }
  putchar('"');
}

static int parse_long(const char *opt, const char *val, long lo, long *out) {
  char *end;
  errno = 0;
  long v = val ? strtol(val, &end, 10) : 0;
  if (!val || errno || *end || v < lo) {
    fprintf(stderr, "edgec_bench: %s needs an integer >= %ld\n", opt, lo);
    return 0;
  }
  *out = v;
  return 1;
}

#if EDGEC_BENCH_PROFILE
static void print_u64s(const char *key, const edgec_profile_entry *rows, int n, int calls) {
  printf(", \"%s\": [", key);
  for (int k = 0; k < n; ++k)
    printf("%s%llu", k ? ", " : "", (unsigned long long)(calls ? rows[k].calls : rows[k].ticks));
  putchar(']');
}

static double cpu_max_hz(void) { /* cpufreq's maximum (kHz), 0 when the device does not say */
  FILE *f = fopen("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", "r");
  double khz = 0.0;
  if (f) {
    if (fscanf(f, "%lf", &khz) != 1) khz = 0.0;
    fclose(f);
  }
  return khz * 1e3;
}

/* The table after the timed runs, then up to 5 more runs each read around with the table: the
 * one closest to the median time is the representative run (its per-kernel ticks). */
static int print_profile(edgec_ctx *ctx, const unsigned char *saved, long runs, double median) {
  const edgec_model_info *info = &FN(_info);
  int n = FN(_profile_info).num_kernels;
  edgec_profile_entry *rows = malloc(sizeof(edgec_profile_entry) * (size_t)(3 * n + 1));
  if (!rows) { fprintf(stderr, "edgec_bench: out of memory\n"); return 0; }
  edgec_profile_entry *before = rows + n, *best = rows + 2 * n;
  edgec_status s = FN(_profile)(ctx, rows, n);
  double best_gap = -1.0, best_us = 0.0;
  for (long r = 0; s == EDGEC_OK && r < (runs < 5 ? runs : 5); ++r) {
    size_t off = 0;
    for (int i = 0; i < info->num_inputs; off += info->inputs[i].bytes, ++i)
      memcpy(FN(_input_ptr)(ctx, i), saved + off, info->inputs[i].bytes);
    s = FN(_profile)(ctx, before, n);
    double t0 = now_us();
    if (s == EDGEC_OK) s = FN(_run)(ctx);
    double us = now_us() - t0, gap = us > median ? us - median : median - us;
    if (s == EDGEC_OK && (best_gap < 0.0 || gap < best_gap)) {
      s = FN(_profile)(ctx, best, n);
      for (int k = 0; k < n; ++k) best[k].ticks -= before[k].ticks;
      best_gap = gap;
      best_us = us;
    }
  }
  if (s != EDGEC_OK) { fprintf(stderr, "edgec_bench: profile: %s\n", edgec_status_str(s)); free(rows); return 0; }
  const char *timer = FN(_profile_info).timer == EDGEC_TIMER_TSC ? "tsc"
                      : FN(_profile_info).timer == EDGEC_TIMER_CNTVCT ? "cntvct" : "clock";
  printf(", \"profile\": {\"timer\": \"%s\", \"ticks_per_s\": %llu, \"cpu_hz\": %.0f, \"run_us\": %.3f",
         timer, (unsigned long long)FN(_profile_ticks_per_second)(), cpu_max_hz(), best_us);
  print_u64s("calls", rows, n, 1);
  print_u64s("ticks", rows, n, 0);
  print_u64s("run_ticks", best, n, 0);
  putchar('}');
  free(rows);
  return 1;
}
#endif

static int usage(void) {
  fprintf(stderr, "usage: edgec_bench [--runs N] [--warmup N] [--min-time S] [--max-runs N] "
                  "[--threads T] [--seed S] [--input FILE]... [--output-dir DIR]\n");
  return 2;
}

int main(int argc, char **argv) {
  long runs = 50, warmup = 5, max_runs = 1000000, threads = 1, seed = 0;
  double min_time_s = 0.0;
  const char *inputs[MAX_INPUT_FILES];
  int n_files = 0;
  const char *out_dir = NULL;
  for (int a = 1; a < argc; ++a) {
    const char *opt = argv[a], *val = a + 1 < argc ? argv[a + 1] : NULL;
    int ok = 1;
    if (!strcmp(opt, "--runs")) ok = parse_long(opt, val, 1, &runs);
    else if (!strcmp(opt, "--warmup")) ok = parse_long(opt, val, 0, &warmup);
    else if (!strcmp(opt, "--max-runs")) ok = parse_long(opt, val, 1, &max_runs);
    else if (!strcmp(opt, "--threads")) ok = parse_long(opt, val, 1, &threads);
    else if (!strcmp(opt, "--seed")) ok = parse_long(opt, val, 0, &seed);
    else if (!strcmp(opt, "--min-time")) {
      char *end;
      min_time_s = val ? strtod(val, &end) : -1.0;
      ok = val && !*end && min_time_s >= 0.0;
      if (!ok) fprintf(stderr, "edgec_bench: --min-time needs seconds >= 0\n");
    } else if (!strcmp(opt, "--input") && val && n_files < MAX_INPUT_FILES) inputs[n_files++] = val;
    else if (!strcmp(opt, "--output-dir") && val) out_dir = val;
    else return usage();
    if (!ok) return 2;
    ++a;  /* every option takes a value */
  }

  const edgec_model_info *info = &FN(_info);
  if (n_files && n_files != info->num_inputs) {
    fprintf(stderr, "edgec_bench: %d --input files given, the model has %d inputs\n", n_files,
            (int)info->num_inputs);
    return 2;
  }
  edgec_status s = FN(_verify_weights)();
  if (s != EDGEC_OK) { fprintf(stderr, "edgec_bench: weights: %s\n", edgec_status_str(s)); return 1; }
  unsigned char *raw = malloc(info->arena_bytes + EDGEC_ARENA_ALIGN);
  double *times = malloc(sizeof(double) * 1024);
  size_t cap = 1024;
  if (!raw || !times) { fprintf(stderr, "edgec_bench: out of memory\n"); return 1; }
  unsigned char *arena = raw + (EDGEC_ARENA_ALIGN - (uintptr_t)raw % EDGEC_ARENA_ALIGN) % EDGEC_ARENA_ALIGN;
  edgec_ctx ctx;
  s = FN(_init)(&ctx, arena, info->arena_bytes, (int)threads);
  if (s != EDGEC_OK) { fprintf(stderr, "edgec_bench: init: %s\n", edgec_status_str(s)); return 1; }

  uint64_t state = (uint64_t)seed;
  for (int i = 0; i < info->num_inputs; ++i) {
    void *dst = FN(_input_ptr)(&ctx, i);
    if (n_files) {
      if (!read_exact(inputs[i], dst, info->inputs[i].bytes)) return 2;
    } else {
      fill_random(dst, info->inputs[i].dtype, info->inputs[i].bytes, &state);
    }
  }

  /* Inputs live in the arena: a model may reuse input memory for intermediates, so restore
   * them before every run to keep each run (and the checksum) identical. */
  size_t in_total = 0;
  for (int i = 0; i < info->num_inputs; ++i) in_total += info->inputs[i].bytes;
  unsigned char *saved = malloc(in_total ? in_total : 1);
  if (!saved) { fprintf(stderr, "edgec_bench: out of memory\n"); return 1; }
  for (size_t i = 0, off = 0; i < (size_t)info->num_inputs; off += info->inputs[i].bytes, ++i)
    memcpy(saved + off, FN(_input_ptr)(&ctx, (int)i), info->inputs[i].bytes);

  long n = 0;
  double t_begin = 0.0, min_time_us = min_time_s * 1e6;
  for (long r = -warmup; r < max_runs; ++r) {
    if (r == 0) t_begin = now_us();
#if EDGEC_BENCH_PROFILE
    if (r == 0 && (s = FN(_profile_reset)(&ctx)) != EDGEC_OK) {
      fprintf(stderr, "edgec_bench: profile: %s\n", edgec_status_str(s));
      return 1;
    }
#endif
    if (r >= 0 && r >= runs && now_us() - t_begin >= min_time_us) break;
    size_t off = 0;
    for (int i = 0; i < info->num_inputs; off += info->inputs[i].bytes, ++i)
      memcpy(FN(_input_ptr)(&ctx, i), saved + off, info->inputs[i].bytes);
    double t0 = now_us();
    s = FN(_run)(&ctx);
    double t1 = now_us();
    if (s != EDGEC_OK) { fprintf(stderr, "edgec_bench: run: %s\n", edgec_status_str(s)); return 1; }
    if (r < 0) continue;
    if ((size_t)n == cap) {
      double *more = realloc(times, sizeof(double) * cap * 2);
      if (!more) break;
      times = more;
      cap *= 2;
    }
    times[n++] = t1 - t0;
  }
  double total_s = (now_us() - t_begin) * 1e-6;
  /* (a profiled build's extra runs come after the outputs are hashed: same inputs, same outputs) */

  uint64_t h = 0xCBF29CE484222325ull;
  for (int i = 0; i < info->num_outputs; ++i) {
    const unsigned char *p = FN(_output_ptr)(&ctx, i);
    h = fnv1a64(h, p, info->outputs[i].bytes);
    if (out_dir) {
      char path[4096];
      snprintf(path, sizeof path, "%s/out%d.bin", out_dir, i);
      FILE *f = fopen(path, "wb");
      if (!f || fwrite(p, 1, info->outputs[i].bytes, f) != info->outputs[i].bytes) {
        fprintf(stderr, "edgec_bench: cannot write %s\n", path);
        return 1;
      }
      fclose(f);
    }
  }

  double sum = 0.0;
  for (long i = 0; i < n; ++i) sum += times[i];
  qsort(times, (size_t)n, sizeof(double), cmp_double);
  double median = n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
  double p90 = times[(9 * n + 9) / 10 - 1]; /* nearest rank: ceil(0.9 n) */

  printf("{\"harness_version\": %d, \"model\": ", HARNESS_VERSION);
  json_string(info->name);
  printf(", \"edgec_version\": ");
  json_string(info->edgec_version);
  printf(", \"runs\": %ld, \"warmup\": %ld, \"threads\": %ld, \"min_us\": %.3f, \"median_us\": %.3f, "
         "\"mean_us\": %.3f, \"p90_us\": %.3f, \"max_us\": %.3f, \"total_s\": %.6f, "
         "\"inputs\": \"%s\", \"seed\": %ld, \"checksum\": \"fnv1a64:%016llx\", \"arena_bytes\": %lu",
         n, warmup, threads, times[0], median, sum / (double)n, p90, times[n - 1], total_s,
         n_files ? "files" : "random", seed, (unsigned long long)h, (unsigned long)info->arena_bytes);
#if EDGEC_BENCH_PROFILE
  if (!print_profile(&ctx, saved, n, median)) return 1;
#endif
  putchar('}');
  putchar('\n');
  free(saved);
  free(times);
  free(raw);
  return fflush(stdout) == 0 ? 0 : 1;
}
