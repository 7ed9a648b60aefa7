/* Runs an edgec bundle of the stateful sampling net for N steps, feeding the GRU states back.
 *
 * The model: edgec.models.sampling_net.sampling_net(stateful=True), e.g.
 *   python -c "import onnx; from edgec.models.sampling_net import sampling_net as s; \
 *              onnx.save(s(stateful=True, sparsity=0.8), 'sampnet.onnx')"
 * inputs `input` [1, 1, 128], `h1`, `h2`;
 * outputs `output` [1, 256] (softmax), `h1_out`, `h2_out`. Before every step after the first,
 * h1 <- h1_out and h2 <- h2_out (the states start at zero); `input` takes the next frame.
 *
 * Build (the bundle's prefix goes into MODEL_PREFIX / MODEL_HEADER; default `sampnet`):
 *   edgec build sampnet.onnx --name sampnet -o out/sampnet
 *   gcc -std=c99 -O2 -Iout/sampnet/include examples/sampling_net_steps.c \
 *       out/sampnet/lib/libsampnet.a -pthread -o sampling_net_steps
 * Usage:
 *   sampling_net_steps N [FRAMES.bin [PROBS.bin [STATES.bin]]]
 *   FRAMES.bin  N rows of `input` (float32); absent or `-`: a fixed pseudo-random sequence in [-1, 1)
 *   PROBS.bin   written: N rows of `output` (float32), one per step
 *   STATES.bin  written: the final h1 then h2 (float32)
 * Prints (stdout) one line: steps, argmax of the last step's output, min and mean us per step. */
#define _POSIX_C_SOURCE 200112L /* posix_memalign, clock_gettime */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef MODEL_PREFIX
#define MODEL_PREFIX sampnet
#define MODEL_HEADER "sampnet.h"
#endif
#include MODEL_HEADER

#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)
#define M(fn) CAT(MODEL_PREFIX, fn) /* M(run) -> sampnet_run */

static const edgec_model_info *info = &M(info);

static int find(const edgec_tensor_info *t, int n, const char *name) {
  for (int i = 0; i < n; ++i)
    if (strcmp(t[i].name, name) == 0) return i;
  fprintf(stderr, "model `%s` has no tensor `%s`: build the sampling net with stateful=True\n",
          info->name, name);
  exit(2);
}

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

static void check(edgec_status s, const char *what) {
  if (s != EDGEC_OK) {
    fprintf(stderr, "%s: %s\n", what, edgec_status_str(s));
    exit(1);
  }
}

int main(int argc, char **argv) {
  if (argc < 2 || argc > 5 || atol(argv[1]) <= 0) {
    fprintf(stderr, "usage: %s N [FRAMES.bin [PROBS.bin [STATES.bin]]]\n", argv[0]);
    return 2;
  }
  long steps = atol(argv[1]);
  int x_in = find(info->inputs, info->num_inputs, "input");
  int h1_in = find(info->inputs, info->num_inputs, "h1");
  int h2_in = find(info->inputs, info->num_inputs, "h2");
  int p_out = find(info->outputs, info->num_outputs, "output");
  int h1_out = find(info->outputs, info->num_outputs, "h1_out");
  int h2_out = find(info->outputs, info->num_outputs, "h2_out");
  size_t xb = info->inputs[x_in].bytes, pb = info->outputs[p_out].bytes;
  size_t h1b = info->inputs[h1_in].bytes, h2b = info->inputs[h2_in].bytes;
  if (info->outputs[h1_out].bytes != h1b || info->outputs[h2_out].bytes != h2b) {
    fprintf(stderr, "state inputs and outputs differ in size\n");
    return 2;
  }

  /* frames in, probabilities out; the states live in h (h1 then h2) between steps */
  float *frames = malloc(steps * xb), *probs = malloc(steps * pb);
  unsigned char *h = calloc(1, h1b + h2b);
  void *arena = NULL;
  if (!frames || !probs || !h || posix_memalign(&arena, 64, info->arena_bytes) != 0) {
    fprintf(stderr, "out of memory\n");
    return 1;
  }
  if (argc > 2 && strcmp(argv[2], "-") != 0) {
    FILE *f = fopen(argv[2], "rb");
    size_t got = f ? fread(frames, 1, steps * xb, f) : 0;
    if (!f || got != steps * xb || fgetc(f) != EOF) {
      fprintf(stderr, "%s: expected exactly %ld x %zu bytes\n", argv[2], steps, xb);
      return 2;
    }
    fclose(f);
  } else {
    unsigned int seed = 12345u;
    for (size_t i = 0; i < steps * xb / sizeof(float); ++i) {
      seed = seed * 1664525u + 1013904223u;
      frames[i] = (float)(seed >> 8) / (float)(1u << 23) - 1.0f;
    }
  }

  edgec_ctx ctx;
  check(M(init)(&ctx, arena, info->arena_bytes, 1), "init");
  double best = 1e300, total = 0.0;
  for (long t = 0; t < steps; ++t) {
    double t0 = now_us();
    /* inputs are set from our own buffers: outputs may share arena space with inputs */
    check(M(set_input)(&ctx, x_in, (const unsigned char *)frames + t * xb, xb), "input");
    check(M(set_input)(&ctx, h1_in, h, h1b), "h1");
    check(M(set_input)(&ctx, h2_in, h + h1b, h2b), "h2");
    check(M(run)(&ctx), "run");
    check(M(get_output)(&ctx, p_out, (unsigned char *)probs + t * pb, pb), "output");
    check(M(get_output)(&ctx, h1_out, h, h1b), "h1_out"); /* the state fed back */
    check(M(get_output)(&ctx, h2_out, h + h1b, h2b), "h2_out");
    double dt = now_us() - t0;
    best = dt < best ? dt : best;
    total += dt;
  }
  M(deinit)(&ctx);

  const float *last = (const float *)((const unsigned char *)probs + (steps - 1) * pb);
  size_t levels = pb / sizeof(float), arg = 0;
  for (size_t i = 1; i < levels; ++i)
    if (last[i] > last[arg]) arg = i;
  printf("steps %ld argmax %zu min_us %.2f mean_us %.2f\n", steps, arg, best, total / steps);

  const char *paths[2] = {argc > 3 ? argv[3] : NULL, argc > 4 ? argv[4] : NULL};
  const void *data[2] = {probs, h};
  size_t bytes[2] = {steps * pb, h1b + h2b};
  for (int k = 0; k < 2; ++k) {
    if (!paths[k]) continue;
    FILE *f = fopen(paths[k], "wb");
    if (!f || fwrite(data[k], 1, bytes[k], f) != bytes[k] || fclose(f) != 0) {
      fprintf(stderr, "cannot write %s\n", paths[k]);
      return 1;
    }
  }
  free(frames);
  free(probs);
  free(h);
  free(arena);
  return 0;
}
