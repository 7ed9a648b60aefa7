/* edgec runtime: argument checks around the generated graph function. No malloc, no libm. */
#include "edgec_runtime.h"

#define EDGEC_CTX_MAGIC 0xED6EC0DEu

static void copy_bytes(uint8_t *dst, const uint8_t *src, size_t n) {
  /* A plain loop: the runtime must not depend on libc. */
  for (size_t i = 0; i < n; ++i) dst[i] = src[i];
}

__attribute__((weak)) void edgec_platform_log(const char *message) { (void)message; }

static edgec_status check_ctx(const edgec_ctx *ctx) {
  if (!ctx) return EDGEC_ERR_NULL;
  if (ctx->magic != EDGEC_CTX_MAGIC || !ctx->info) return EDGEC_ERR_STATE;
  return EDGEC_OK;
}

edgec_status edgec_init(edgec_ctx *ctx, const edgec_model_info *info, void *arena,
                        size_t arena_bytes, int num_threads) {
  if (!ctx || !info) return EDGEC_ERR_NULL;
  ctx->magic = 0;
  if (!arena && info->arena_bytes > 0) return EDGEC_ERR_NULL;
  if (((uintptr_t)arena) % EDGEC_ARENA_ALIGN != 0) return EDGEC_ERR_ALIGNMENT;
  if (arena_bytes < info->arena_bytes) return EDGEC_ERR_ARENA_TOO_SMALL;
  if (num_threads < 1 || num_threads > EDGEC_MAX_THREADS) return EDGEC_ERR_THREADS;
  if (num_threads > 1 && info->max_threads <= 1) return EDGEC_ERR_THREADS; /* built single-threaded */
  ctx->info = info;
  ctx->arena = (uint8_t *)arena;
  ctx->arena_bytes = arena_bytes;
  ctx->num_threads = num_threads;
  ctx->pool = 0;
#if EDGEC_THREADS
  if (num_threads > 1 && edgec_pool_start(ctx, num_threads) != 0) return EDGEC_ERR_THREADS;
#endif
  ctx->magic = EDGEC_CTX_MAGIC;
  return EDGEC_OK;
}

edgec_status edgec_set_input(edgec_ctx *ctx, int index, const void *data, size_t bytes) {
  edgec_status s = check_ctx(ctx);
  if (s != EDGEC_OK) return s;
  if (!data) return EDGEC_ERR_NULL;
  if (index < 0 || index >= ctx->info->num_inputs) return EDGEC_ERR_INDEX;
  const edgec_tensor_info *t = &ctx->info->inputs[index];
  if (bytes != t->bytes) return EDGEC_ERR_SIZE;
  copy_bytes(ctx->arena + t->arena_offset, (const uint8_t *)data, bytes);
  return EDGEC_OK;
}

void *edgec_input_ptr(edgec_ctx *ctx, int index) {
  if (check_ctx(ctx) != EDGEC_OK || index < 0 || index >= ctx->info->num_inputs) return 0;
  return ctx->arena + ctx->info->inputs[index].arena_offset;
}

edgec_status edgec_run(edgec_ctx *ctx) {
  edgec_status s = check_ctx(ctx);
  if (s != EDGEC_OK) return s;
  ctx->info->graph_run(ctx->arena, ctx->pool);
  return EDGEC_OK;
}

edgec_status edgec_get_output(edgec_ctx *ctx, int index, void *data, size_t bytes) {
  edgec_status s = check_ctx(ctx);
  if (s != EDGEC_OK) return s;
  if (!data) return EDGEC_ERR_NULL;
  if (index < 0 || index >= ctx->info->num_outputs) return EDGEC_ERR_INDEX;
  const edgec_tensor_info *t = &ctx->info->outputs[index];
  if (bytes != t->bytes) return EDGEC_ERR_SIZE;
  copy_bytes((uint8_t *)data, ctx->arena + t->arena_offset, bytes);
  return EDGEC_OK;
}

const void *edgec_output_ptr(edgec_ctx *ctx, int index) {
  if (check_ctx(ctx) != EDGEC_OK || index < 0 || index >= ctx->info->num_outputs) return 0;
  return ctx->arena + ctx->info->outputs[index].arena_offset;
}

edgec_status edgec_verify_weights(const edgec_model_info *info) {
  if (!info) return EDGEC_ERR_NULL;
  uint32_t a = 1, b = 0;
  for (size_t i = 0; i < info->weight_bytes; ++i) {
    a = (a + info->weights[i]) % 65521u;
    b = (b + a) % 65521u;
  }
  return ((b << 16) | a) == info->weights_adler32 ? EDGEC_OK : EDGEC_ERR_CHECKSUM;
}

edgec_status edgec_deinit(edgec_ctx *ctx) {
  edgec_status s = check_ctx(ctx);
  if (s != EDGEC_OK) return s;
#if EDGEC_THREADS
  edgec_pool_stop(ctx);
#endif
  ctx->magic = 0;
  return EDGEC_OK;
}

size_t edgec_ctx_size(void) { return sizeof(edgec_ctx); }

#if !EDGEC_THREADS
void edgec_parallel_for(void *pool, edgec_task_fn fn, void *args, int32_t num_tasks) {
  (void)pool;
  for (int32_t t = 0; t < num_tasks; ++t) fn(args, t, num_tasks);
}
#endif

const char *edgec_status_str(edgec_status status) {
  switch (status) {
    case EDGEC_OK: return "ok";
    case EDGEC_ERR_NULL: return "null pointer argument";
    case EDGEC_ERR_ARENA_TOO_SMALL: return "arena too small";
    case EDGEC_ERR_ALIGNMENT: return "arena not 64-byte aligned";
    case EDGEC_ERR_INDEX: return "tensor index out of range";
    case EDGEC_ERR_SIZE: return "byte count does not match the tensor size";
    case EDGEC_ERR_THREADS: return "unsupported thread count";
    case EDGEC_ERR_CHECKSUM: return "weight checksum mismatch";
    case EDGEC_ERR_STATE: return "context not initialized for this model";
  }
  return "unknown status";
}
