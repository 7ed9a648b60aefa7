/* edgec runtime: the small C layer between an app and a compiled model.
 * C99, no malloc, no libm. The caller owns the arena; every call returns a status. */
#ifndef EDGEC_RUNTIME_H
#define EDGEC_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EDGEC_ABI_VERSION 1
#define EDGEC_ARENA_ALIGN 64
#define EDGEC_MAX_DIMS 8
#define EDGEC_MAX_THREADS 16

/* Generated code hands work to the runtime as tasks: fn(args, task, num_tasks) for every task
 * in [0, num_tasks). Without a thread pool (single-thread builds) they run in order on the
 * calling thread. */
typedef void (*edgec_task_fn)(void *args, int32_t task, int32_t num_tasks);
void edgec_parallel_for(void *pool, edgec_task_fn fn, void *args, int32_t num_tasks);

typedef enum {
  EDGEC_OK = 0,
  EDGEC_ERR_NULL = 1,             /* a required pointer was NULL */
  EDGEC_ERR_ARENA_TOO_SMALL = 2,  /* arena_bytes < <NAME>_ARENA_BYTES */
  EDGEC_ERR_ALIGNMENT = 3,        /* arena not 64-byte aligned */
  EDGEC_ERR_INDEX = 4,            /* input/output index out of range */
  EDGEC_ERR_SIZE = 5,             /* byte count does not match the tensor */
  EDGEC_ERR_THREADS = 6,          /* num_threads < 1 or above what the build supports */
  EDGEC_ERR_CHECKSUM = 7,         /* weights do not match the checksum in the model info */
  EDGEC_ERR_STATE = 8             /* ctx not initialized, or initialized for another model */
} edgec_status;

typedef enum {
  EDGEC_F32 = 1, EDGEC_U8 = 2, EDGEC_I8 = 3, EDGEC_U16 = 4, EDGEC_I16 = 5, EDGEC_I32 = 6,
  EDGEC_I64 = 7, EDGEC_BOOL = 9, EDGEC_F16 = 10, EDGEC_F64 = 11, EDGEC_U32 = 12, EDGEC_U64 = 13
} edgec_dtype; /* values follow ONNX TensorProto.DataType */

typedef struct {
  const char *name;
  edgec_dtype dtype;
  int32_t ndim;
  int64_t shape[EDGEC_MAX_DIMS];
  size_t bytes;
  size_t arena_offset;
  float scale;       /* quantization scale, 0 when not quantized */
  int32_t zero_point;
} edgec_tensor_info;

typedef struct edgec_model_info {
  const char *name;
  const char *edgec_version;
  int32_t num_inputs;
  int32_t num_outputs;
  const edgec_tensor_info *inputs;
  const edgec_tensor_info *outputs;
  size_t arena_bytes;
  const uint8_t *weights;
  size_t weight_bytes;
  uint32_t weights_adler32; /* Adler-32 of the weight blob, checked by edgec_verify_weights */
  void (*graph_run)(void *arena, void *pool);
  int32_t max_threads;     /* threads the bundle was built for (1: no thread pool compiled in) */
} edgec_model_info;

typedef struct {
  const edgec_model_info *info;
  uint8_t *arena;
  size_t arena_bytes;
  int num_threads;
  uint32_t magic;
  void *pool;                 /* points into pool_storage when worker threads run */
  uint64_t pool_storage[160]; /* the thread pool lives in the caller's ctx: no malloc */
} edgec_ctx;

edgec_status edgec_init(edgec_ctx *ctx, const edgec_model_info *info, void *arena,
                        size_t arena_bytes, int num_threads);
edgec_status edgec_set_input(edgec_ctx *ctx, int index, const void *data, size_t bytes);
void *edgec_input_ptr(edgec_ctx *ctx, int index);
edgec_status edgec_run(edgec_ctx *ctx);
edgec_status edgec_get_output(edgec_ctx *ctx, int index, void *data, size_t bytes);
const void *edgec_output_ptr(edgec_ctx *ctx, int index);
edgec_status edgec_verify_weights(const edgec_model_info *info);
edgec_status edgec_deinit(edgec_ctx *ctx); /* joins worker threads; the ctx can be re-initialized */
size_t edgec_ctx_size(void);

/* Thread pool (edgec_threads.c; only in bundles built with --threads > 1). */
int edgec_pool_start(edgec_ctx *ctx, int num_threads);
void edgec_pool_stop(edgec_ctx *ctx);
const char *edgec_status_str(edgec_status status);

/* Weak platform hooks (override in the app): log a message. */
void edgec_platform_log(const char *message);

#ifdef __cplusplus
}
#endif
#endif /* EDGEC_RUNTIME_H */
