/* Pieces the runtime's own files share (not part of the public API in fc.h). */
#ifndef FC_INTERNAL_H
#define FC_INTERNAL_H

#include "fc.h"

#define FC_ASSERT(name, cond) typedef char fc_assert_##name[(cond) ? 1 : -1]

#define FC_IMAGE_MAGIC 0x32544346u    /* "FCT2": Thumb-2 image */
#define FC_BYTECODE_MAGIC 0x31424346u /* "FCB1": eBPF bytecode container */

/* Checks the header, tables and layout shared by both container kinds (in the order
 * backends/thumb/IMAGE.md lists) and binds the container. `unit` is the code granule: 2 (Thumb
 * halfwords) or 8 (eBPF slots); code size and entry must be multiples of it. */
int fc__load_common(fc_container_t *c, const uint8_t *img, size_t len, uint32_t magic, uint32_t unit);

/* Region table, fresh stack and writable sections, registers zeroed (nregs slots), r1/r2 set. */
void fc__setup(fc_container_t *c, void *ctx, size_t ctx_len);

/* Calls helper id with r1..r5 from st->regs; r0 to st->regs[0]. Returns FC_OK, FC_STATUS_STOP,
 * FC_UNKNOWN_HELPER or FC_HELPER. */
int fc__call_helper(fc_state_t *st, uint32_t id_lo, uint32_t id_hi);

/* The Thumb image runner (fc_run.c). */
int fc__run_thumb(fc_container_t *c, void *ctx, size_t ctx_len, uint64_t *r0);

/* The region of [addr, addr + size), or NULL; *why = FC_OUT_OF_BOUNDS or FC_PERMISSION. */
const fc_region_t *fc__find_region(const fc_state_t *st, uint64_t addr, uint64_t size, int write, int *why);

/* Measurement hooks around the code a run executes (the test firmware counts instructions). */
#ifdef FC_TRACE
void fc_trace_enter(void);
void fc_trace_exit(void);
#define FC_TRACE_ENTER() fc_trace_enter()
#define FC_TRACE_EXIT() fc_trace_exit()
#else
#define FC_TRACE_ENTER() ((void)0)
#define FC_TRACE_EXIT() ((void)0)
#endif

/* A little-endian 32-bit word at p (images and containers are little-endian byte arrays). */
static inline uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#endif
