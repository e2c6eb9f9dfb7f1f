/* The C interpreter of the femto-container runtime: runs eBPF bytecode containers ("FCB1") with
 * the region table, helpers, fault codes and budget semantics of the compiled path, and the exact
 * semantics of runtime/interp.ts (the reference): same r0, same fault kind and pc, same `steps`.
 *
 * Design (what an rBPF user would call a fair baseline):
 *   - fc_load_bytecode pre-checks every slot once (opcode, reserved fields, registers, jump and call
 *     targets inside the program and never into an lddw's second slot, lddw shape), CertrBPF-style,
 *     so the run loop validates nothing but memory accesses and the budget;
 *   - dispatch is threaded: each handler ends by fetching the next slot and jumping through a
 *     256-entry label table on the opcode byte (GCC computed goto);
 *   - registers are uint64_t; every load and store is checked against the region table, with a
 *     one-entry cache per base register (separate for reads and writes) in front of the scan;
 *   - the budget is counted per instruction, as the reference does (a 32-bit down-counter refilled
 *     from the 64-bit budget), so `steps` and the budget fault's pc match it exactly;
 *   - local calls save r6-r10 in the run state's frames (8 levels), helpers go through the same
 *     checked dispatcher as compiled code.
 * Running off the end needs no check either: the container's code ends with one all-zero slot
 * (required by the loader), whose opcode 0x00 dispatches to the "ran past the end" fault.
 *
 * Memory: the interpreter keeps its registers and caches in the run state's register area and its
 * frames in the state's frame area (fc_state_t, shared with Thumb images): no RAM of its own. */
#include "fc.h"
#include "fc_internal.h"

#define NREGS 11u
#define CHUNK 0x7fffffffull

typedef struct {
  uint64_t r[NREGS];
  uint64_t pad;
  const fc_region_t *rcache[NREGS];
  const fc_region_t *wcache[NREGS];
} iregs_t;

typedef struct {
  const uint32_t *ret;
  uint32_t pad;
  uint64_t saved[5]; /* r6-r9, r10 */
} iframe_t;

FC_ASSERT(iregs_fit, sizeof(iregs_t) <= sizeof(((fc_state_t *)0)->regs));
FC_ASSERT(iframe_fit, sizeof(iframe_t) <= FC_FRAME_SIZE);

/* A region nothing lies in: the caches' initial entry (every first access takes the scan). */
static const fc_region_t no_region = {0, 0, 0, 0, {0, 0, 0, 0}};

/* ---- the pre-check ---- */

static int atomic_imm(int32_t imm) {
  switch (imm) {
    case 0x00: case 0x01: case 0x40: case 0x41: case 0x50: case 0x51: case 0xa0: case 0xa1: case 0xe1: case 0xf1:
      return 1;
    default:
      return 0;
  }
}

/* Slots the instruction at i occupies (1, or 2 for lddw), or 0 when it is refused; *rel = relative
 * target of a jump or local call (else left alone), *ends = it never falls through. */
static uint32_t check_insn(const uint32_t *code, uint32_t i, uint32_t n, int32_t *rel, int *has_rel) {
  uint32_t w = code[2 * i];
  int32_t imm = (int32_t)code[2 * i + 1];
  uint32_t op = w & 0xffu, dst = (w >> 8) & 15u, src = (w >> 12) & 15u;
  int32_t off = (int32_t)w >> 16;
  uint32_t cls = op & 7u, opn = op & 0xf0u, x = op & 8u, mode = op & 0xe0u, size = op & 0x18u;
  int src_is_reg = 1; /* src must name a register (lddw and call use the field otherwise) */
  *has_rel = 0;
  switch (cls) {
    case 4: case 7: /* ALU, ALU64 */
      if (opn > 0xd0u) return 0;
      if (opn == 0x80u) { /* neg */
        if (x || src || off || imm) return 0;
      } else if (opn == 0xd0u) { /* byte order */
        if (src || off || (imm != 16 && imm != 32 && imm != 64) || (cls == 7 && x)) return 0;
      } else {
        if (opn == 0x30u || opn == 0x90u) {
          if (off != 0 && off != 1) return 0;
        } else if (opn == 0xb0u && x && off != 0) {
          if (off != 8 && off != 16 && !(cls == 7 && off == 32)) return 0;
        } else if (off != 0) {
          return 0;
        }
        if (x ? imm != 0 : src != 0) return 0;
      }
      break;
    case 5: case 6: /* JMP, JMP32 */
      if (opn > 0xd0u) return 0;
      if (opn == 0x00u) { /* ja / gotol */
        if (x || dst || src) return 0;
        if (cls == 5 ? imm != 0 : off != 0) return 0;
        *rel = cls == 5 ? off : imm;
        *has_rel = 1;
      } else if (opn == 0x80u) { /* call, callx */
        if (cls == 6) return 0;
        if (x) {
          if (src || off || imm) return 0;
        } else {
          if (dst || off || src > 1) return 0;
          src_is_reg = 0;
          if (src == 1) {
            *rel = imm;
            *has_rel = 1;
          }
        }
      } else if (opn == 0x90u) { /* exit */
        if (cls == 6 || x || dst || src || off || imm) return 0;
      } else {
        if (x ? imm != 0 : src != 0) return 0;
        *rel = off;
        *has_rel = 1;
      }
      break;
    case 0: /* LD: only lddw; relocations are resolved by the packer, maps do not exist */
      if (op != 0x18u || off != 0 || src != 0 || i + 1 >= n || code[2 * (i + 1)] != 0) return 0;
      if (dst > 10u) return 0;
      return 2;
    case 1: /* LDX */
      if (!(mode == 0x60u || (mode == 0x80u && size != 0x18u)) || imm != 0) return 0;
      break;
    case 2: /* ST */
      if (mode != 0x60u || src != 0) return 0;
      break;
    default: /* STX */
      if (mode == 0x60u) {
        if (imm != 0) return 0;
      } else if (!(mode == 0xc0u && (size == 0x00u || size == 0x18u) && atomic_imm(imm))) {
        return 0;
      }
      break;
  }
  if (dst > 10u || (src_is_reg && src > 10u)) return 0;
  return 1;
}

/* 0 when every slot is accepted, else 1 with *bad = the refused slot. n excludes the end slot. */
static int check_code(const uint32_t *code, uint32_t n, uint32_t entry, uint32_t *bad) {
  for (uint32_t i = 0; i < n;) {
    int32_t rel = 0;
    int has_rel;
    uint32_t len = check_insn(code, i, n, &rel, &has_rel);
    if (len == 0) {
      *bad = i;
      return 1;
    }
    if (has_rel) {
      int64_t t = (int64_t)i + 1 + rel;
      /* A slot after an lddw's first slot is its second half: never a target. */
      if (t < 0 || t >= (int64_t)n || (t > 0 && (code[2 * (t - 1)] & 0xffu) == 0x18u)) {
        *bad = i;
        return 1;
      }
    }
    i += len;
  }
  if (entry > 0 && (code[2 * (entry - 1)] & 0xffu) == 0x18u) {
    *bad = entry;
    return 1;
  }
  return 0;
}

int fc__run_interp(fc_container_t *c, void *ctx, size_t ctx_len, uint64_t *r0);

int fc_load_bytecode(fc_container_t *c, const uint8_t *bc, size_t len) {
  int status = fc__load_common(c, bc, len, FC_BYTECODE_MAGIC, 8u);
  if (status != FC_OK) return status;
  c->loaded = 0;
  const uint32_t *code = (const uint32_t *)(const void *)c->code;
  uint32_t slots = c->code_size / 8u;
  /* The end slot: all zero, never a jump target (targets must be < slots - 1). */
  if (slots < 2 || code[2 * (slots - 1)] != 0 || code[2 * (slots - 1) + 1] != 0 || c->entry / 8u >= slots - 1) {
    return FC_ERR_FORMAT;
  }
  uint32_t bad;
  if (check_code(code, slots - 1, c->entry / 8u, &bad)) {
    c->fault.pc = bad;
    return FC_ERR_INSN;
  }
  c->run_fn = fc__run_interp;
  c->loaded = 1;
  return FC_OK;
}

/* ---- memory ---- */

/* The slow path of an access: scan the regions, refill the cache, or report the fault. */
__attribute__((noinline)) static uint8_t *lookup(fc_state_t *st, const fc_region_t **cache, uint64_t a, uint32_t size, int write) {
  int why;
  const fc_region_t *r = fc__find_region(st, a, size, write, &why);
  if (r == 0) {
    st->fault_addr_lo = (uint32_t)a;
    st->fault_addr_hi = (uint32_t)(a >> 32);
    st->fault_info = size | FC_INFO_HAS_ADDR | (write ? FC_INFO_WRITE : 0u) | (uint32_t)why << 16;
    return 0;
  }
  *cache = r;
  return r->host + ((uint32_t)a - r->vbase);
}

/* ---- arithmetic with RFC 9669's definitions where C leaves gaps ---- */

static uint64_t sdiv64(uint64_t a, uint64_t b) {
  if (b == 0) return 0;
  if (b == ~0ull) return 0u - a; /* INT64_MIN / -1 = INT64_MIN */
  return (uint64_t)((int64_t)a / (int64_t)b);
}

static uint64_t smod64(uint64_t a, uint64_t b) {
  if (b == 0) return a;
  if (b == ~0ull) return 0;
  return (uint64_t)((int64_t)a % (int64_t)b);
}

static uint32_t sdiv32(uint32_t a, uint32_t b) {
  if (b == 0) return 0;
  if (b == 0xffffffffu) return 0u - a;
  return (uint32_t)((int32_t)a / (int32_t)b);
}

static uint32_t smod32(uint32_t a, uint32_t b) {
  if (b == 0) return a;
  if (b == 0xffffffffu) return 0;
  return (uint32_t)((int32_t)a % (int32_t)b);
}

/* ---- the run loop ---- */

#define D ((w >> 8) & 15u)
#define S ((w >> 12) & 15u)
#define OFF ((int32_t)w >> 16)
#define IMM ((int32_t)ip[1])
#define SIMM ((uint64_t)(int64_t)IMM)
#define UIMM ((uint32_t)IMM)

/* subs + bmi: GCC's own code for `if (--left < 0)` spends a third instruction on the test. */
#if defined(__GNUC__) && defined(__thumb2__)
#define CHARGE() __asm__ goto("subs %0, %0, #1\n\tbmi %l[refill]" : "+r"(left) : : "cc" : refill)
#else
#define CHARGE()                              \
  do {                                        \
    if (__builtin_expect(--left < 0, 0)) goto refill; \
  } while (0)
#endif

/* Charge one instruction (refilling the 32-bit counter from the 64-bit reserve), then jump to the
 * handler of the slot at ip. The fast build (-O2) threads the dispatch into every handler through a
 * table of label addresses; the compact build (-Os, or FC_INTERP_COMPACT) has one shared dispatch
 * and a table of 16-bit label offsets: about 4 KiB less flash for one instruction more per eBPF
 * instruction. */
#if defined(FC_INTERP_COMPACT) || defined(__OPTIMIZE_SIZE__)
#define FC_COMPACT 1
#define DISPATCH() goto dispatch
#define TARGET(l) (int16_t)((const char *)&&l - (const char *)&&past_end)
#else
#define FC_COMPACT 0
#define DISPATCH()                              \
  do {                                          \
    CHARGE();                                   \
    w = ip[0];                                  \
    goto *tab[w & 0xffu];                       \
  } while (0)
#define TARGET(l) &&l
#endif
#define NEXT()   \
  do {           \
    ip += 2;     \
    DISPATCH();  \
  } while (0)
#define JUMP_IF(cond)                          \
  do {                                         \
    ip += (cond) ? 2 * (OFF + 1) : 2;          \
    DISPATCH();                                \
  } while (0)

/* A checked access of SZ bytes at R[base] + off: p = host address, or to the fault. */
/* The fast path computes the address in 32 bits: with the base's upper half 0, a carry or borrow
 * from the 16-bit offset lands below 0x10000 or above 0xffff0000, where no region ever lies
 * (fc_run keeps every region inside [0x10000, 0xf0000000)), so the 32-bit test is exact. */
#define ACCESS(base, SZ, SZI, CACHE, WRITE)                                           \
  do {                                                                                \
    uint32_t b_ = (base);                                                             \
    const fc_region_t *rg_ = ir->CACHE[b_];                                           \
    uint32_t o_ = (uint32_t)R[b_] + (uint32_t)OFF - rg_->vbase;                       \
    if (__builtin_expect((uint32_t)(R[b_] >> 32) == 0 && o_ < rg_->cnt[SZI], 1)) {    \
      p = rg_->host + o_;                                                             \
    } else {                                                                          \
      p = lookup(st, &ir->CACHE[b_], R[b_] + (uint64_t)(int64_t)OFF, SZ, WRITE);     \
      if (p == 0) goto mem_fault;                                                     \
    }                                                                                 \
  } while (0)

#define LD(T, SZ, SZI)                       \
  do {                                       \
    ACCESS(S, SZ, SZI, rcache, 0);           \
    T v_;                                    \
    __builtin_memcpy(&v_, p, SZ);            \
    R[D] = (uint64_t)v_;                     \
    NEXT();                                  \
  } while (0)
#define LDS(T, SZ, SZI)                      \
  do {                                       \
    ACCESS(S, SZ, SZI, rcache, 0);           \
    T v_;                                    \
    __builtin_memcpy(&v_, p, SZ);            \
    R[D] = (uint64_t)(int64_t)v_;            \
    NEXT();                                  \
  } while (0)
#define ST(T, SZ, SZI, VAL)                  \
  do {                                       \
    ACCESS(D, SZ, SZI, wcache, 1);           \
    T v_ = (T)(VAL);                         \
    __builtin_memcpy(p, &v_, SZ);            \
    NEXT();                                  \
  } while (0)

#define ALU64(K, X, EXPR_K, EXPR_X) \
  K:                                \
  R[D] = (EXPR_K);                  \
  NEXT();                           \
  X:                                \
  R[D] = (EXPR_X);                  \
  NEXT();
#define ALU32(K, X, OP)                             \
  K:                                                \
  R[D] = (uint32_t)((uint32_t)R[D] OP UIMM);        \
  NEXT();                                           \
  X:                                                \
  R[D] = (uint32_t)((uint32_t)R[D] OP (uint32_t)R[S]); \
  NEXT();
#define JMP64(K, X, OP)                             \
  K:                                                \
  JUMP_IF(R[D] OP SIMM);                            \
  X:                                                \
  JUMP_IF(R[D] OP R[S]);
#define JMPS64(K, X, OP)                            \
  K:                                                \
  JUMP_IF((int64_t)R[D] OP (int64_t)SIMM);          \
  X:                                                \
  JUMP_IF((int64_t)R[D] OP (int64_t)R[S]);
#define JMP32(K, X, OP)                             \
  K:                                                \
  JUMP_IF((uint32_t)R[D] OP UIMM);                  \
  X:                                                \
  JUMP_IF((uint32_t)R[D] OP (uint32_t)R[S]);
#define JMPS32(K, X, OP)                            \
  K:                                                \
  JUMP_IF((int32_t)R[D] OP IMM);                    \
  X:                                                \
  JUMP_IF((int32_t)R[D] OP (int32_t)R[S]);

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverride-init"

int fc__run_interp(fc_container_t *c, void *ctx, size_t ctx_len, uint64_t *r0) {
#if FC_COMPACT
  static const int16_t table[256] = {
#else
  static const void *const table[256] = {
#endif
      [0 ... 255] = TARGET(past_end),
      [0x07] = TARGET(add64k), [0x0f] = TARGET(add64x), [0x17] = TARGET(sub64k), [0x1f] = TARGET(sub64x),
      [0x27] = TARGET(mul64k), [0x2f] = TARGET(mul64x), [0x37] = TARGET(div64k), [0x3f] = TARGET(div64x),
      [0x47] = TARGET(or64k), [0x4f] = TARGET(or64x), [0x57] = TARGET(and64k), [0x5f] = TARGET(and64x),
      [0x67] = TARGET(lsh64k), [0x6f] = TARGET(lsh64x), [0x77] = TARGET(rsh64k), [0x7f] = TARGET(rsh64x),
      [0x87] = TARGET(neg64), [0x97] = TARGET(mod64k), [0x9f] = TARGET(mod64x), [0xa7] = TARGET(xor64k), [0xaf] = TARGET(xor64x),
      [0xb7] = TARGET(mov64k), [0xbf] = TARGET(mov64x), [0xc7] = TARGET(arsh64k), [0xcf] = TARGET(arsh64x), [0xd7] = TARGET(bswap),
      [0x04] = TARGET(add32k), [0x0c] = TARGET(add32x), [0x14] = TARGET(sub32k), [0x1c] = TARGET(sub32x),
      [0x24] = TARGET(mul32k), [0x2c] = TARGET(mul32x), [0x34] = TARGET(div32k), [0x3c] = TARGET(div32x),
      [0x44] = TARGET(or32k), [0x4c] = TARGET(or32x), [0x54] = TARGET(and32k), [0x5c] = TARGET(and32x),
      [0x64] = TARGET(lsh32k), [0x6c] = TARGET(lsh32x), [0x74] = TARGET(rsh32k), [0x7c] = TARGET(rsh32x),
      [0x84] = TARGET(neg32), [0x94] = TARGET(mod32k), [0x9c] = TARGET(mod32x), [0xa4] = TARGET(xor32k), [0xac] = TARGET(xor32x),
      [0xb4] = TARGET(mov32k), [0xbc] = TARGET(mov32x), [0xc4] = TARGET(arsh32k), [0xcc] = TARGET(arsh32x),
      [0xd4] = TARGET(le), [0xdc] = TARGET(be),
      [0x18] = TARGET(lddw),
      [0x61] = TARGET(ldxw), [0x69] = TARGET(ldxh), [0x71] = TARGET(ldxb), [0x79] = TARGET(ldxdw),
      [0x81] = TARGET(ldxsw), [0x89] = TARGET(ldxsh), [0x91] = TARGET(ldxsb),
      [0x62] = TARGET(stw), [0x6a] = TARGET(sth), [0x72] = TARGET(stb), [0x7a] = TARGET(stdw),
      [0x63] = TARGET(stxw), [0x6b] = TARGET(stxh), [0x73] = TARGET(stxb), [0x7b] = TARGET(stxdw),
      [0xc3] = TARGET(atomic32), [0xdb] = TARGET(atomic64),
      [0x05] = TARGET(ja), [0x06] = TARGET(ja32),
      [0x15] = TARGET(jeqk), [0x1d] = TARGET(jeqx), [0x25] = TARGET(jgtk), [0x2d] = TARGET(jgtx), [0x35] = TARGET(jgek), [0x3d] = TARGET(jgex),
      [0x45] = TARGET(jsetk), [0x4d] = TARGET(jsetx), [0x55] = TARGET(jnek), [0x5d] = TARGET(jnex), [0x65] = TARGET(jsgtk), [0x6d] = TARGET(jsgtx),
      [0x75] = TARGET(jsgek), [0x7d] = TARGET(jsgex), [0xa5] = TARGET(jltk), [0xad] = TARGET(jltx), [0xb5] = TARGET(jlek), [0xbd] = TARGET(jlex),
      [0xc5] = TARGET(jsltk), [0xcd] = TARGET(jsltx), [0xd5] = TARGET(jslek), [0xdd] = TARGET(jslex),
      [0x16] = TARGET(jeq32k), [0x1e] = TARGET(jeq32x), [0x26] = TARGET(jgt32k), [0x2e] = TARGET(jgt32x), [0x36] = TARGET(jge32k), [0x3e] = TARGET(jge32x),
      [0x46] = TARGET(jset32k), [0x4e] = TARGET(jset32x), [0x56] = TARGET(jne32k), [0x5e] = TARGET(jne32x), [0x66] = TARGET(jsgt32k), [0x6e] = TARGET(jsgt32x),
      [0x76] = TARGET(jsge32k), [0x7e] = TARGET(jsge32x), [0xa6] = TARGET(jlt32k), [0xae] = TARGET(jlt32x), [0xb6] = TARGET(jle32k), [0xbe] = TARGET(jle32x),
      [0xc6] = TARGET(jslt32k), [0xce] = TARGET(jslt32x), [0xd6] = TARGET(jsle32k), [0xde] = TARGET(jsle32x),
      [0x85] = TARGET(call), [0x8d] = TARGET(callx), [0x95] = TARGET(exit_),
  };
  fc_state_t *st = &c->state;
  fc__setup(c, ctx, ctx_len);
  iregs_t *ir = (iregs_t *)(void *)st->regs;
  uint64_t *R = ir->r;
  R[10] = FC_STACK_BASE + FC_STACK_SIZE;
  for (uint32_t i = 0; i < NREGS; i++) ir->rcache[i] = ir->wcache[i] = &no_region;
  const uint32_t *code = (const uint32_t *)(const void *)c->code;
  const uint32_t *ip = code + 2u * (c->entry / 8u);
  /* Instructions left = left + reserve; the hot counter is a signed 32-bit chunk. */
  uint64_t budget = c->budget;
  int32_t left = budget > CHUNK ? (int32_t)CHUNK : (int32_t)budget;
  uint64_t reserve = budget - (uint32_t)left;
  uint32_t depth = 0;
  uint32_t w;
  uint8_t *p;
#if !FC_COMPACT
  /* The label table in a register: otherwise GCC reaches it through a section anchor (one more
   * instruction per dispatch). */
  const void *const *tab = table;
  __asm__("" : "+r"(tab));
#endif
  int status;

  FC_TRACE_ENTER();
#if FC_COMPACT
dispatch:
  CHARGE();
  w = ip[0];
  goto *(&&past_end + table[w & 0xffu]);
#else
  DISPATCH();
#endif

refill: /* left went below 0: take the next chunk from the reserve */
  left = 0;
  if (reserve == 0) {
    status = FC_BUDGET;
    goto fault;
  }
  left = reserve > CHUNK ? (int32_t)CHUNK : (int32_t)reserve;
  reserve -= (uint32_t)left;
  DISPATCH();

  /* ---- ALU64 ---- */
  ALU64(add64k, add64x, R[D] + SIMM, R[D] + R[S])
  ALU64(sub64k, sub64x, R[D] - SIMM, R[D] - R[S])
  ALU64(mul64k, mul64x, R[D] * SIMM, R[D] * R[S])
  ALU64(or64k, or64x, R[D] | SIMM, R[D] | R[S])
  ALU64(and64k, and64x, R[D] & SIMM, R[D] & R[S])
  ALU64(xor64k, xor64x, R[D] ^ SIMM, R[D] ^ R[S])
  ALU64(lsh64k, lsh64x, R[D] << (IMM & 63), R[D] << (R[S] & 63))
  ALU64(rsh64k, rsh64x, R[D] >> (IMM & 63), R[D] >> (R[S] & 63))
  ALU64(arsh64k, arsh64x, (uint64_t)((int64_t)R[D] >> (IMM & 63)), (uint64_t)((int64_t)R[D] >> (R[S] & 63)))
  ALU64(mov64k, mov64x_plain, SIMM, R[S])
neg64:
  R[D] = 0u - R[D];
  NEXT();
mov64x:
  switch (OFF) {
    case 0: goto mov64x_plain;
    case 8: R[D] = (uint64_t)(int64_t)(int8_t)R[S]; break;
    case 16: R[D] = (uint64_t)(int64_t)(int16_t)R[S]; break;
    default: R[D] = (uint64_t)(int64_t)(int32_t)R[S]; break;
  }
  NEXT();
div64k:
  R[D] = OFF ? sdiv64(R[D], SIMM) : (SIMM == 0 ? 0 : R[D] / SIMM);
  NEXT();
div64x:
  R[D] = OFF ? sdiv64(R[D], R[S]) : (R[S] == 0 ? 0 : R[D] / R[S]);
  NEXT();
mod64k:
  R[D] = OFF ? smod64(R[D], SIMM) : (SIMM == 0 ? R[D] : R[D] % SIMM);
  NEXT();
mod64x:
  R[D] = OFF ? smod64(R[D], R[S]) : (R[S] == 0 ? R[D] : R[D] % R[S]);
  NEXT();

  /* ---- ALU32: results zero-extended ---- */
  ALU32(add32k, add32x, +)
  ALU32(sub32k, sub32x, -)
  ALU32(mul32k, mul32x, *)
  ALU32(or32k, or32x, |)
  ALU32(and32k, and32x, &)
  ALU32(xor32k, xor32x, ^)
lsh32k:
  R[D] = (uint32_t)((uint32_t)R[D] << (IMM & 31));
  NEXT();
lsh32x:
  R[D] = (uint32_t)((uint32_t)R[D] << (R[S] & 31));
  NEXT();
rsh32k:
  R[D] = (uint32_t)R[D] >> (IMM & 31);
  NEXT();
rsh32x:
  R[D] = (uint32_t)R[D] >> (R[S] & 31);
  NEXT();
arsh32k:
  R[D] = (uint32_t)((int32_t)R[D] >> (IMM & 31));
  NEXT();
arsh32x:
  R[D] = (uint32_t)((int32_t)R[D] >> (R[S] & 31));
  NEXT();
neg32:
  R[D] = (uint32_t)(0u - (uint32_t)R[D]);
  NEXT();
mov32k:
  R[D] = UIMM;
  NEXT();
mov32x:
  switch (OFF) {
    case 0: R[D] = (uint32_t)R[S]; break;
    case 8: R[D] = (uint32_t)(int32_t)(int8_t)R[S]; break;
    default: R[D] = (uint32_t)(int32_t)(int16_t)R[S]; break;
  }
  NEXT();
div32k:
  R[D] = OFF ? sdiv32((uint32_t)R[D], UIMM) : (UIMM == 0 ? 0 : (uint32_t)R[D] / UIMM);
  NEXT();
div32x: {
  uint32_t b = (uint32_t)R[S];
  R[D] = OFF ? sdiv32((uint32_t)R[D], b) : (b == 0 ? 0 : (uint32_t)R[D] / b);
  NEXT();
}
mod32k:
  R[D] = OFF ? smod32((uint32_t)R[D], UIMM) : (UIMM == 0 ? (uint32_t)R[D] : (uint32_t)R[D] % UIMM);
  NEXT();
mod32x: {
  uint32_t b = (uint32_t)R[S];
  R[D] = OFF ? smod32((uint32_t)R[D], b) : (b == 0 ? (uint32_t)R[D] : (uint32_t)R[D] % b);
  NEXT();
}

  /* ---- byte order ---- */
le:
  if (IMM == 16) R[D] = (uint16_t)R[D];
  else if (IMM == 32) R[D] = (uint32_t)R[D];
  NEXT();
be:
bswap:
  if (IMM == 16) R[D] = __builtin_bswap16((uint16_t)R[D]);
  else if (IMM == 32) R[D] = __builtin_bswap32((uint32_t)R[D]);
  else R[D] = __builtin_bswap64(R[D]);
  NEXT();

lddw:
  R[D] = (uint64_t)ip[3] << 32 | ip[1];
  ip += 4;
  DISPATCH();

  /* ---- memory ---- */
ldxw:
  LD(uint32_t, 4, 2);
ldxh:
  LD(uint16_t, 2, 1);
ldxb:
  LD(uint8_t, 1, 0);
ldxdw:
  LD(uint64_t, 8, 3);
ldxsw:
  LDS(int32_t, 4, 2);
ldxsh:
  LDS(int16_t, 2, 1);
ldxsb:
  LDS(int8_t, 1, 0);
stw:
  ST(uint32_t, 4, 2, IMM);
sth:
  ST(uint16_t, 2, 1, IMM);
stb:
  ST(uint8_t, 1, 0, IMM);
stdw:
  ST(uint64_t, 8, 3, SIMM);
stxw:
  ST(uint32_t, 4, 2, R[S]);
stxh:
  ST(uint16_t, 2, 1, R[S]);
stxb:
  ST(uint8_t, 1, 0, R[S]);
stxdw:
  ST(uint64_t, 8, 3, R[S]);

atomic32: {
  ACCESS(D, 4, 2, wcache, 1);
  uint32_t old, v = (uint32_t)R[S], nv;
  __builtin_memcpy(&old, p, 4);
  switch (IMM & 0xf0) {
    case 0x00: nv = old + v; break;
    case 0x40: nv = old | v; break;
    case 0x50: nv = old & v; break;
    case 0xa0: nv = old ^ v; break;
    case 0xe0: nv = v; break;
    default: nv = old == (uint32_t)R[0] ? v : old; break;
  }
  __builtin_memcpy(p, &nv, 4);
  if (IMM == 0xf1) R[0] = old;
  else if (IMM & 1) R[S] = old;
  NEXT();
}
atomic64: {
  ACCESS(D, 8, 3, wcache, 1);
  uint64_t old, v = R[S], nv;
  __builtin_memcpy(&old, p, 8);
  switch (IMM & 0xf0) {
    case 0x00: nv = old + v; break;
    case 0x40: nv = old | v; break;
    case 0x50: nv = old & v; break;
    case 0xa0: nv = old ^ v; break;
    case 0xe0: nv = v; break;
    default: nv = old == R[0] ? v : old; break;
  }
  __builtin_memcpy(p, &nv, 8);
  if (IMM == 0xf1) R[0] = old;
  else if (IMM & 1) R[S] = old;
  NEXT();
}

  /* ---- jumps ---- */
ja:
  JUMP_IF(1);
ja32:
  ip += 2 * (IMM + 1);
  DISPATCH();
  JMP64(jeqk, jeqx, ==)
  JMP64(jnek, jnex, !=)
  JMP64(jgtk, jgtx, >)
  JMP64(jgek, jgex, >=)
  JMP64(jltk, jltx, <)
  JMP64(jlek, jlex, <=)
  JMPS64(jsgtk, jsgtx, >)
  JMPS64(jsgek, jsgex, >=)
  JMPS64(jsltk, jsltx, <)
  JMPS64(jslek, jslex, <=)
jsetk:
  JUMP_IF((R[D] & SIMM) != 0);
jsetx:
  JUMP_IF((R[D] & R[S]) != 0);
  JMP32(jeq32k, jeq32x, ==)
  JMP32(jne32k, jne32x, !=)
  JMP32(jgt32k, jgt32x, >)
  JMP32(jge32k, jge32x, >=)
  JMP32(jlt32k, jlt32x, <)
  JMP32(jle32k, jle32x, <=)
  JMPS32(jsgt32k, jsgt32x, >)
  JMPS32(jsge32k, jsge32x, >=)
  JMPS32(jslt32k, jslt32x, <)
  JMPS32(jsle32k, jsle32x, <=)
jset32k:
  JUMP_IF(((uint32_t)R[D] & UIMM) != 0);
jset32x:
  JUMP_IF(((uint32_t)R[D] & (uint32_t)R[S]) != 0);

  /* ---- calls ---- */
call:
  if (S == 1) { /* local call */
    if (depth + 1 >= FC_MAX_CALL_DEPTH) {
      status = FC_CALL_DEPTH;
      goto fault;
    }
    iframe_t *f = (iframe_t *)(void *)st->frames[depth];
    f->ret = ip + 2;
    for (uint32_t r = 0; r < 5; r++) f->saved[r] = R[6 + r];
    depth++;
    R[10] = FC_STACK_BASE + FC_STACK_SIZE - depth * FC_STACK_FRAME;
    ip += 2 * (IMM + 1);
    DISPATCH();
  }
  status = fc__call_helper(st, (uint32_t)IMM, 0);
  goto helper_done;
callx:
  status = fc__call_helper(st, (uint32_t)R[D], (uint32_t)(R[D] >> 32));
helper_done:
  if (__builtin_expect(status == FC_OK, 1)) NEXT();
  if (status == FC_STATUS_STOP) goto done;
  goto fault;
exit_:
  if (depth == 0) goto done;
  {
    depth--;
    const iframe_t *f = (const iframe_t *)(const void *)st->frames[depth];
    ip = f->ret;
    for (uint32_t r = 0; r < 5; r++) R[6 + r] = f->saved[r];
  }
  DISPATCH();

past_end:
  status = FC_INVALID;
  goto fault;

mem_fault:
  status = (int)(st->fault_info >> 16);
  st->fault_info &= 0xffffu;
  goto fault_mem;

done:
  FC_TRACE_EXIT();
  c->steps = budget - reserve - (uint32_t)left;
  if (r0 != 0) *r0 = R[0];
  return FC_OK;

fault:
  st->fault_info = 0;
fault_mem:
  FC_TRACE_EXIT();
  c->steps = budget - reserve - (uint32_t)left;
  c->fault.kind = (uint32_t)status;
  c->fault.pc = (uint32_t)(ip - code) / 2u;
  c->fault.has_addr = (st->fault_info & FC_INFO_HAS_ADDR) != 0;
  c->fault.write = (st->fault_info & FC_INFO_WRITE) != 0;
  c->fault.size = st->fault_info & 0xffu;
  c->fault.addr = c->fault.has_addr ? (uint64_t)st->fault_addr_hi << 32 | st->fault_addr_lo : 0;
  return status;
}

#pragma GCC diagnostic pop
