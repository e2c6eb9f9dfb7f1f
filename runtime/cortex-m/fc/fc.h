/* femto-container device runtime: the public contract shared by every engine that runs eBPF
 * containers on a Cortex-M: femtojit's Thumb-2 images (fc_load) and the C interpreter over eBPF
 * bytecode containers (fc_load_bytecode, runtime/cortex-m/interp/). Freestanding C99, no malloc,
 * no libc beyond -lgcc.
 *
 * What is shared by all engines, and must stay stable:
 *   - fc_status_t: 0 = success, 1..7 = the fault kinds with the numeric codes of
 *     runtime/errors.ts FAULT_CODES (same program, same ending, whichever engine runs it),
 *     16 and up = load-time refusals;
 *   - fc_region_t and the container layout (runtime/layout.ts): the stack (4096 bytes = 8 frames of
 *     512) at container address 0x10000, each data section at the next page boundary after a
 *     one-page gap, the context memory ("mem") last; r1 = mem address, r2 = its length,
 *     r10 = top of the current frame;
 *   - helpers: fc_helper_fn, called by id with r1..r5 (AAPCS: 64-bit arguments in register pairs
 *     and on the stack), r1..r5 unchanged afterwards; fc_call_stop ends the program with a result
 *     (helper 5 "unwind" uses it), fc_call_fail faults with FC_HELPER; helpers registered with
 *     fc_register_helper_checked get their pointer arguments checked against the regions first;
 *   - fc_fault_t: the eBPF pc (slot) of the faulting instruction, and for memory faults the address
 *     and size.
 *
 * Use (ahead-of-time linking, the usual firmware flow):
 *
 *     femtojit compile prog.o --target thumb --emit c -o filter.c   (writes filter.c and filter.h)
 *     (with --mem-size N for a fixed-size context: fewer checks, and fc_run refuses any other
 *     length with FC_ERR_CONTEXT)
 *
 *     #include "fc.h"
 *     #include "filter.h"                     // extern const uint8_t filter[]; filter_len
 *     static fc_container_t box;              // ~3.8 KiB: run state, native stack, local store
 *     static uint8_t arena[FC_STACK_SIZE + 256] __attribute__((aligned(8)));
 *
 *     fc_register_default_helpers();          // optional: printf, memcpy, kv store, clocks, unwind
 *     fc_init(&box, arena, sizeof arena);
 *     if (fc_load(&box, filter, filter_len) != FC_OK) ...;        // validated once
 *     uint64_t r0;
 *     int st = fc_run(&box, &ctx, sizeof ctx, &r0);                // as often as needed
 *     if (st != FC_OK) ... box.fault.kind, box.fault.pc ...
 *
 * A bytecode container (runtime/device-engine.ts packBytecode) goes through fc_load_bytecode
 * instead of fc_load and then runs with the very same fc_run, regions, helpers and fault codes.
 * fc_init gives the container memory for the stack and writable data; fc_load/fc_load_bytecode
 * validate (refuse anything malformed: nothing is ever run from a refused container); each run gets
 * a zeroed stack and fresh copies of writable sections; the context is used in place.
 *
 * Requirements of Thumb images (backends/thumb/IMAGE.md): the image is 4-byte aligned and in
 * executable memory (code runs in place); 64-bit atomics mask interrupts with CPSID, which needs
 * privileged execution; while a container runs, sp points at the container's run state and the
 * native stack (calls into helpers, interrupt frames) grows below it into FC_NATIVE_STACK bytes.
 * The interpreter runs on the caller's stack (about 100 bytes plus what helpers use). */
#ifndef FC_H
#define FC_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
  FC_OK = 0,
  /* Run-time faults: the codes of runtime/errors.ts FAULT_CODES. */
  FC_OUT_OF_BOUNDS = 1,
  FC_PERMISSION = 2,
  FC_BUDGET = 3,
  FC_UNKNOWN_HELPER = 4,
  FC_HELPER = 5,
  FC_CALL_DEPTH = 6,
  FC_INVALID = 7,
  /* Load-time refusals (fc_load) and API misuse. */
  FC_ERR_SHORT = 16,    /* shorter than the header */
  FC_ERR_MAGIC = 17,    /* not a femto-container image */
  FC_ERR_VERSION = 18,  /* a format version this runtime does not read */
  FC_ERR_SIZE = 19,     /* the header's size differs from the buffer's */
  FC_ERR_CHECKSUM = 20, /* CRC-32 mismatch */
  FC_ERR_FORMAT = 21,   /* a table, the code or the entry lies outside the image, or is malformed */
  FC_ERR_LAYOUT = 22,   /* region addresses differ from the container layout */
  FC_ERR_LIMIT = 23,    /* more sections, registers or helpers than this runtime holds */
  FC_ERR_ALIGN = 24,    /* the image is not 4-byte aligned */
  FC_ERR_NOSPACE = 25,  /* the arena cannot hold the stack and the writable sections */
  FC_ERR_NOT_LOADED = 26,
  FC_ERR_INSN = 27,     /* bytecode: an instruction the interpreter refuses (c->fault.pc = its slot) */
  FC_ERR_CONTEXT = 28   /* fc_run: the image was compiled for another context length (c->mem_len) */
} fc_status_t;

/* Internal status of generated code: a helper stopped the program (never returned by fc_run). */
#define FC_STATUS_STOP 0x100

#define FC_STACK_BASE 0x10000u
#define FC_STACK_FRAME 512u
#define FC_MAX_CALL_DEPTH 8u
#define FC_STACK_SIZE (FC_STACK_FRAME * FC_MAX_CALL_DEPTH)
#define FC_PAGE 0x1000u
#define FC_MAX_REGIONS 16u /* stack + data sections + mem */
#define FC_MAX_VREGS 64u   /* register slots (eBPF r0-r10 and IR temporaries) */
#define FC_MAX_HELPERS 256u
#define FC_MAX_REGISTERED_HELPERS 32u
#define FC_DEFAULT_BUDGET 100000000ull
#ifndef FC_KV_LOCAL_CAPACITY
#define FC_KV_LOCAL_CAPACITY 8u /* entries of a container's local key-value store */
#endif
#ifndef FC_KV_GLOBAL_CAPACITY
#define FC_KV_GLOBAL_CAPACITY 16u /* entries of the store all containers share */
#endif
#ifndef FC_NATIVE_STACK
#define FC_NATIVE_STACK 2048u
#endif

#define FC_REGION_WRITE 1u

/* fc_container_t.mem_len of a container that runs with any context length. */
#define FC_ANY_CONTEXT_LEN 0xffffffffu

/* One region of the container's address space. Generated code reads this layout directly
 * (backends/thumb/abi.ts REGION): keep it. */
typedef struct fc_region {
  uint32_t vbase;  /* container address of byte 0 */
  uint8_t *host;   /* where the bytes are */
  uint32_t delta;  /* host - vbase (mod 2^32): physical = container address + delta */
  uint32_t flags;  /* FC_REGION_WRITE */
  uint32_t cnt[4]; /* valid start offsets for 1-, 2-, 4-, 8-byte accesses: len - size + 1, or 0 */
} fc_region_t;

/* Byte offsets in the run state (sp-relative in generated code; backends/thumb/abi.ts OFF). */
#define FC_OFF_EXIT_LR 0
#define FC_OFF_SAVED_SP 4
#define FC_OFF_BUDGET 8
#define FC_OFF_DEPTH 12
#define FC_OFF_R10 16
#define FC_OFF_FP_PHYS 20
#define FC_OFF_HELPER_FN 24
#define FC_OFF_DIV64_FN 28
#define FC_OFF_FAULT_SITE 32
#define FC_OFF_FAULT_ADDR_LO 36
#define FC_OFF_FAULT_ADDR_HI 40
#define FC_OFF_FAULT_INFO 44
#define FC_OFF_NREGIONS 48
#define FC_OFF_PRIMASK 52
#define FC_OFF_TMP 56
#define FC_OFF_REGIONS 80
#define FC_OFF_REGS 592
#define FC_OFF_FRAMES 1104
#define FC_OFF_SIZE 1616
#define FC_REGION_SIZE 32
#define FC_FRAME_SIZE 64

/* FAULT_INFO bits. */
#define FC_INFO_WRITE 0x100u
#define FC_INFO_HAS_ADDR 0x200u

/* 64-bit division operations (fc_div64's op). */
#define FC_DIV64_UDIV 0
#define FC_DIV64_UREM 1
#define FC_DIV64_SDIV 2
#define FC_DIV64_SREM 3

struct fc_state;
typedef int (*fc_dispatch_fn)(struct fc_state *st, uint32_t id_lo, uint32_t id_hi);
typedef void (*fc_div64_fn)(struct fc_state *st, uint32_t op);

/* The run state of a Thumb image: generated code runs with sp = &state. */
typedef struct fc_state {
  uint32_t exit_lr;
  uint32_t saved_sp;
  uint32_t budget;
  uint32_t depth;
  uint32_t r10;
  uint32_t fp_phys;
  fc_dispatch_fn helper_fn;
  fc_div64_fn div64_fn;
  uint32_t fault_site;
  uint32_t fault_addr_lo;
  uint32_t fault_addr_hi;
  uint32_t fault_info;
  uint32_t nregions;
  uint32_t primask;
  uint32_t tmp[4];
  uint32_t reserved[2];
  fc_region_t regions[FC_MAX_REGIONS];
  uint32_t regs[FC_MAX_VREGS][2]; /* [r][0] = low half, [r][1] = high half */
  uint32_t frames[FC_MAX_CALL_DEPTH][FC_FRAME_SIZE / 4];
} fc_state_t;

typedef struct fc_fault {
  uint32_t kind; /* fc_status_t fault code */
  uint32_t pc;   /* eBPF slot of the faulting instruction (0xffffffff if unknown) */
  uint64_t addr; /* memory faults: the effective address */
  uint32_t size; /* memory faults: the access size */
  uint8_t write;
  uint8_t has_addr;
} fc_fault_t;

struct fc_container;
typedef int (*fc_runner_fn)(struct fc_container *c, void *ctx, size_t ctx_len, uint64_t *r0);

/* One entry of a key-value store (keys and values are 32-bit, as in RIOT's femto-containers). */
typedef struct fc_kv {
  uint32_t key;
  uint32_t value;
} fc_kv_t;

typedef struct fc_container {
  /* Loaded image (fc_load) or bytecode container (fc_load_bytecode). */
  const uint8_t *image;
  const uint8_t *code;
  uint32_t code_size;
  uint32_t entry;
  const uint8_t *sites;
  uint32_t nsites;
  const uint8_t *sections;
  uint32_t nsections;
  const uint8_t *helper_ids;
  uint32_t nhelpers;
  uint32_t nregs;
  uint32_t mem_base;
  /* The only context length fc_run accepts (the length the code was specialised for: its
   * verifier-proven accesses rely on it), or FC_ANY_CONTEXT_LEN. */
  uint32_t mem_len;
  int loaded;
  /* The engine that runs what was loaded (set by the loader; only what is loaded gets linked). */
  fc_runner_fn run_fn;
  /* The container's local key-value store (helpers 0x10/0x12); kept across runs, cleared by fc_init. */
  fc_kv_t kv_local[FC_KV_LOCAL_CAPACITY];
  uint32_t kv_local_count;
  /* Memory for the stack and writable sections (fc_init). */
  uint8_t *arena;
  size_t arena_len;
  /* Per run: set budget before fc_run (default FC_DEFAULT_BUDGET; UINT64_MAX = no limit). */
  uint64_t budget;
  /* After a run: budget units charged, and the fault when fc_run returned one. */
  uint64_t steps;
  fc_fault_t fault;
  /* Native stack for helper calls and interrupts: must sit right below the state. */
  uint8_t native_stack[FC_NATIVE_STACK] __attribute__((aligned(8)));
  fc_state_t state __attribute__((aligned(8)));
} fc_container_t;

/* What a helper gets besides r1..r5. */
typedef struct fc_call {
  fc_container_t *container;
  int action; /* internal: 0 = return, 1 = stop, 2 = fail */
  uint64_t r0;
  /* Checked helpers: host address of each pointer argument r1..r5 the spec declares (NULL for
   * other arguments and for zero-length ones). */
  void *ptr[5];
} fc_call_t;

typedef uint64_t (*fc_helper_fn)(fc_call_t *call, uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5);

/* Declared arguments of a checked helper (fc_register_helper_checked), one per r1..r5. Before the
 * call the runtime checks every pointer argument against the container's regions and faults with
 * FC_HELPER (the helper is not called) when it is not wholly inside one region, or inside a
 * read-only one for FC_ARG_WRITE. A length of 0 needs no memory and is never rejected. */
typedef struct fc_arg {
  uint8_t kind;    /* FC_ARG_KIND_* */
  uint8_t len_arg; /* 1..5: the length is that argument's value; 0: the length is `len` */
  uint16_t len;
} fc_arg_t;

#define FC_ARG_KIND_ANY 0u   /* a plain value */
#define FC_ARG_KIND_READ 1u  /* pointer to bytes the helper reads */
#define FC_ARG_KIND_WRITE 2u /* pointer to bytes the helper writes (and may read) */
#define FC_ARG_KIND_STR 3u   /* NUL-terminated string, wholly inside one readable region */

#define FC_ARG_ANY {FC_ARG_KIND_ANY, 0, 0}
#define FC_ARG_READ(k) {FC_ARG_KIND_READ, (k), 0}   /* length = argument rk */
#define FC_ARG_WRITE(k) {FC_ARG_KIND_WRITE, (k), 0} /* length = argument rk */
#define FC_ARG_READ_N(n) {FC_ARG_KIND_READ, 0, (n)}
#define FC_ARG_WRITE_N(n) {FC_ARG_KIND_WRITE, 0, (n)}
#define FC_ARG_STR {FC_ARG_KIND_STR, 0, 0}

/* The femto-container helper set (fc_helpers.c), with RIOT's ids (sys/include/bpf/shared.h) where
 * RIOT has them. runtime/helpers.ts has the same ids and semantics on the host. */
#define FC_HELPER_PRINTF 0x01u       /* printf(fmt, a, b, c, d): %d %i %u %x %X %c %s %%, flags - 0,
                                        width, l/ll for 64 bits; returns the characters written */
#define FC_HELPER_MEMCPY 0x02u       /* memcpy(dst, src, len): checked, overlap-safe; returns dst */
#define FC_HELPER_UNWIND 0x05u       /* the conformance suite's unwind */
#define FC_HELPER_STORE_LOCAL 0x10u  /* store(key, value) -> 0, or -1 when the store is full */
#define FC_HELPER_STORE_GLOBAL 0x11u
#define FC_HELPER_FETCH_LOCAL 0x12u  /* fetch(key, u32 *value) -> 0, or -1 (nothing written) */
#define FC_HELPER_FETCH_GLOBAL 0x13u
#define FC_HELPER_NOW_MS 0x20u       /* milliseconds of the firmware's clock (fc_set_clock) */
#define FC_HELPER_NOW_US 0x21u       /* microseconds (femtojit's id; RIOT has none) */

/* Sets up a container over `arena` (stack and writable data; at least FC_STACK_SIZE bytes). */
void fc_init(fc_container_t *c, uint8_t *arena, size_t arena_len);

/* Validates a Thumb image ("FCT2", backends/thumb/IMAGE.md) and binds it to the container.
 * Returns FC_OK or an FC_ERR_* refusal. */
int fc_load(fc_container_t *c, const uint8_t *image, size_t len);

/* Validates an eBPF bytecode container ("FCB1", runtime/cortex-m/interp/README.md) for the C
 * interpreter: the header and sections as fc_load, then every instruction (opcode, reserved
 * fields, registers, jump and call targets, lddw shape), so that the interpreter's run loop checks
 * nothing but memory accesses and the budget. FC_ERR_INSN names the refused slot in c->fault.pc.
 * Defined in interp/fc_interp.c: firmware that never calls it does not link the interpreter. */
int fc_load_bytecode(fc_container_t *c, const uint8_t *container, size_t len);

/* Runs the loaded program on ctx (the "mem" region; NULL for none: length 0). Returns FC_OK with
 * *r0 set, or a fault code (details in c->fault), or, without running any code: FC_ERR_NOT_LOADED,
 * FC_ERR_LIMIT (a context too large for the address space) or FC_ERR_CONTEXT (an image specialised
 * for one context length, `femtojit compile --mem-size N`, given another: c->mem_len says which). */
int fc_run(fc_container_t *c, void *ctx, size_t ctx_len, uint64_t *r0);

/* Helper registry (global): id -> function. Returns 0, or -1 when the table is full. */
int fc_register_helper(uint32_t id, fc_helper_fn fn);
/* As fc_register_helper, with the declared kind of each argument r1..r5 (5 entries; the array must
 * outlive the registration, e.g. a static const). */
int fc_register_helper_checked(uint32_t id, fc_helper_fn fn, const fc_arg_t *args);
void fc_clear_helpers(void);

/* The standard helper set (fc_helpers.c): registers FC_HELPER_* above. Returns 0, or -1 when the
 * registry is full. */
int fc_register_default_helpers(void);
/* Where printf output goes (default: nowhere). */
void fc_set_output(void (*write)(const char *text, size_t len));
/* The clock now_ms/now_us read, in microseconds; it must not go backwards (default: always 0). */
void fc_set_clock(uint64_t (*now_us)(void));
/* Empties the global key-value store. */
void fc_kv_global_clear(void);

/* Inside a helper: end the program now with result r0 / fault with FC_HELPER. */
void fc_call_stop(fc_call_t *call, uint64_t r0);
void fc_call_fail(fc_call_t *call);
/* Inside a helper: the host address of [addr, addr + size) if it lies in one region (and that
 * region is writable when `write`), else NULL. */
void *fc_call_mem(fc_call_t *call, uint64_t addr, size_t size, int write);
/* Inside a helper: the host address of the NUL-terminated string at addr if it lies (with its NUL)
 * in one region, else NULL. */
const char *fc_call_str(fc_call_t *call, uint64_t addr);

/* The conformance suite's helper 5: returns r1; r1 == 0 stops the program with r0 = 0. */
uint64_t fc_helper_unwind(fc_call_t *call, uint64_t r1, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5);

/* CRC-32 (IEEE, as zlib), as the image checksum uses it. */
uint32_t fc_crc32(const uint8_t *p, size_t n);

#endif
