/* Test firmware for containers: loads Thumb images (and, built with FC_WITH_INTERP, eBPF bytecode
 * containers for the C interpreter: the magic picks the loader) and context memories from the
 * host via semihosting, runs them with the fc runtime and reports each run on one line:
 *
 *   R <i> status=<n> r0=<hex64> pc=<n> addr=<hex64> size=<n> write=<0|1> hasaddr=<0|1>
 *        steps=<n> insns=<n> canary=<ok|BAD>
 *
 * (one line; `insns` = instructions executed between entering and leaving the generated code or
 * the interpreter's loop, from the exact counter). Refused containers report
 * `R <i> status=<n> refused` with the FC_ERR_* code and no run; a bytecode instruction refusal is
 * preceded by `X <i> slot=<n>`. A run fc_run refuses (FC_ERR_LIMIT, FC_ERR_CONTEXT: a context
 * length the image was not compiled for) gets the full line with that status and insns=0. What the program printed (helper printf) comes before its R line
 * as `O <i> <hex bytes>` (hex keeps newlines out of the report; at most OUT_CAP bytes, then
 * `O <i> truncated`).
 *
 * Commands:
 *   run IMAGE MEM BUDGET      one run (MEM "-" = no context; BUDGET decimal or "inf");
 *                             exit code = status (0xE0 when a canary was overwritten)
 *   batch MANIFEST            one run per manifest line "IMAGE MEM BUDGET [keepkv]"; exit 0, or
 *                             0xE0 when any canary was overwritten
 *
 * Helpers: the standard set (fc_register_default_helpers), the clock from the instruction counter
 * (virtual time: 6.4 ticks of 25 MHz per instruction), and two checked test helpers
 * (TEST_HELPER_SUM: sum of bytes [r1, r1 + r2); TEST_HELPER_FILL: fills [r1, r1 + r2) with r3).
 * Each run starts with an empty global key-value store unless its manifest line says `keepkv`
 * (each container's local store is always fresh: fc_init clears it).
 *
 * Canaries: known bytes before and after the context memory, around the arena (stack and writable
 * sections) and at the bottom of the native stack. A run that changes one is a sandbox escape. */
#include <stdint.h>

#include "board.h"
#include "counter.h"
#include "fc.h"
#include "semihost.h"

#define USAGE_EXIT 0xE2
#define CANARY_EXIT 0xE0
#define IO_EXIT 0xE3
#define MAX_ARGS 8
#define GUARD 64u
#define IMAGE_CAP (512u * 1024u)
#define MEM_CAP (256u * 1024u)
#define ARENA_CAP (256u * 1024u)
#define MANIFEST_CAP (64u * 1024u)
#define NATIVE_GUARD 512u
#define OUT_CAP 4096u
#define TEST_HELPER_SUM 0x7000u
#define TEST_HELPER_FILL 0x7001u

static uint8_t image_buf[IMAGE_CAP] __attribute__((aligned(4)));
static uint8_t mem_zone[GUARD + MEM_CAP + GUARD] __attribute__((aligned(8)));
static uint8_t arena_zone[GUARD + ARENA_CAP + GUARD] __attribute__((aligned(8)));
static char manifest[MANIFEST_CAP];
static char cmdline[1024];
static fc_container_t container;

static uint32_t trace_insns;
static char out_buf[OUT_CAP];
static uint32_t out_len, out_dropped;

static void capture(const char *text, size_t len) {
  for (size_t i = 0; i < len; i++) {
    if (out_len < OUT_CAP) out_buf[out_len++] = text[i];
    else out_dropped = 1;
  }
}

static uint64_t board_clock_us(void) {
  return counter_ticks() / (BOARD_SYSCLK_HZ / 1000000u);
}

static uint64_t test_sum(fc_call_t *call, uint64_t p, uint64_t len, uint64_t r3, uint64_t r4, uint64_t r5) {
  (void)p;
  (void)r3;
  (void)r4;
  (void)r5;
  const uint8_t *b = (const uint8_t *)call->ptr[0];
  uint64_t sum = 0;
  for (uint32_t i = 0; i < (uint32_t)len; i++) sum += b[i];
  return sum;
}

static uint64_t test_fill(fc_call_t *call, uint64_t p, uint64_t len, uint64_t byte, uint64_t r4, uint64_t r5) {
  (void)p;
  (void)r4;
  (void)r5;
  uint8_t *b = (uint8_t *)call->ptr[0];
  for (uint32_t i = 0; i < (uint32_t)len; i++) b[i] = (uint8_t)byte;
  return len;
}

static const fc_arg_t sum_args[5] = {FC_ARG_READ(2), FC_ARG_ANY, FC_ARG_ANY, FC_ARG_ANY, FC_ARG_ANY};
static const fc_arg_t fill_args[5] = {FC_ARG_WRITE(2), FC_ARG_ANY, FC_ARG_ANY, FC_ARG_ANY, FC_ARG_ANY};

void fc_trace_enter(void) {
  counter_start();
}

void fc_trace_exit(void) {
  trace_insns = counter_stop();
}

static int str_eq(const char *a, const char *b) {
  while (*a != 0 && *a == *b) {
    a++;
    b++;
  }
  return *a == *b;
}

static void die(const char *why, const char *arg, uint32_t code) {
  sh_puts("run-image: ");
  sh_puts(why);
  if (arg != 0) {
    sh_puts(": ");
    sh_puts(arg);
  }
  sh_puts("\n");
  sh_exit(code);
}

static uint64_t parse_budget(const char *s) {
  if (str_eq(s, "inf")) return ~0ull;
  uint64_t v = 0;
  if (*s == 0) die("missing budget", 0, USAGE_EXIT);
  for (const char *p = s; *p != 0; p++) {
    if (*p < '0' || *p > '9') die("budget is not a number", s, USAGE_EXIT);
    v = v * 10u + (uint64_t)(*p - '0');
  }
  return v;
}

static uint8_t canary_byte(uint32_t i) {
  return (uint8_t)(0xA5u ^ (i * 37u));
}

static void fill(uint8_t *p, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) p[i] = canary_byte(i);
}

static int intact(const uint8_t *p, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    if (p[i] != canary_byte(i)) return 0;
  }
  return 1;
}

static void put_hex64(uint64_t v) {
  sh_puthex((uint32_t)(v >> 32));
  sh_puthex((uint32_t)v);
}

static void put_output(uint32_t index) {
  static const char hex[] = "0123456789abcdef";
  if (out_len == 0) return;
  sh_puts("O ");
  sh_putdec(index);
  sh_puts(" ");
  char chunk[65];
  uint32_t n = 0;
  for (uint32_t i = 0; i < out_len; i++) {
    chunk[n++] = hex[(uint8_t)out_buf[i] >> 4];
    chunk[n++] = hex[(uint8_t)out_buf[i] & 15u];
    if (n == 64 || i + 1 == out_len) {
      chunk[n] = 0;
      sh_puts(chunk);
      n = 0;
    }
  }
  sh_puts("\n");
  if (out_dropped) {
    sh_puts("O ");
    sh_putdec(index);
    sh_puts(" truncated\n");
  }
}

static int load(const uint8_t *img, uint32_t len) {
#ifdef FC_WITH_INTERP
  if (len >= 4 && img[0] == 'F' && img[1] == 'C' && img[2] == 'B' && img[3] == '1') return fc_load_bytecode(&container, img, len);
#endif
  return fc_load(&container, img, len);
}

/* Runs one container; returns its status (or CANARY_EXIT when a canary changed). */
static uint32_t run_one(uint32_t index, const char *image_path, const char *mem_path, uint64_t budget) {
  int32_t ilen = sh_load_file(image_path, image_buf, IMAGE_CAP);
  if (ilen < 0) die("cannot read image", image_path, IO_EXIT);
  uint8_t *mem = mem_zone + GUARD;
  int32_t mlen = 0;
  int has_mem = !str_eq(mem_path, "-");
  if (has_mem) {
    mlen = sh_load_file(mem_path, mem, MEM_CAP);
    if (mlen < 0) die("cannot read memory", mem_path, IO_EXIT);
  }
  fill(mem_zone, GUARD);
  fill(mem + mlen, GUARD);
  fc_init(&container, arena_zone + GUARD, ARENA_CAP);
  int status = load(image_buf, (uint32_t)ilen);
  if (status != FC_OK) {
    if (status == FC_ERR_INSN) {
      sh_puts("X ");
      sh_putdec(index);
      sh_puts(" slot=");
      sh_putdec(container.fault.pc);
      sh_puts("\n");
    }
    sh_puts("R ");
    sh_putdec(index);
    sh_puts(" status=");
    sh_putdec((uint32_t)status);
    sh_puts(" refused\n");
    return (uint32_t)status;
  }
  /* Bytes of the arena the container may use: the stack and the writable sections. */
  uint32_t used = FC_STACK_SIZE;
  for (uint32_t i = 0; i < container.nsections; i++) {
    const uint8_t *s = container.sections + i * 16u;
    uint32_t size = (uint32_t)s[4] | (uint32_t)s[5] << 8 | (uint32_t)s[6] << 16 | (uint32_t)s[7] << 24;
    if (s[8] & 1u) used += (size + 3u) & ~3u;
  }
  uint8_t *arena_end = arena_zone + GUARD + used;
  fill(arena_zone, GUARD);
  fill(arena_end, GUARD);
  fill(container.native_stack, NATIVE_GUARD);
  container.budget = budget;
  uint64_t r0 = 0;
  trace_insns = 0;
  out_len = 0;
  out_dropped = 0;
  status = fc_run(&container, has_mem ? (void *)mem : 0, (size_t)mlen, &r0);
  int ok = intact(mem_zone, GUARD) && intact(mem + mlen, GUARD) && intact(arena_zone, GUARD) &&
           intact(arena_end, GUARD) && intact(container.native_stack, NATIVE_GUARD);
  put_output(index);
  sh_puts("R ");
  sh_putdec(index);
  sh_puts(" status=");
  sh_putdec((uint32_t)status);
  sh_puts(" r0=");
  put_hex64(r0);
  sh_puts(" pc=");
  sh_putdec(status == FC_OK ? 0 : container.fault.pc);
  sh_puts(" addr=");
  put_hex64(status == FC_OK ? 0 : container.fault.addr);
  sh_puts(" size=");
  sh_putdec(status == FC_OK ? 0 : container.fault.size);
  sh_puts(" write=");
  sh_putdec(status == FC_OK ? 0 : container.fault.write);
  sh_puts(" hasaddr=");
  sh_putdec(status == FC_OK ? 0 : container.fault.has_addr);
  sh_puts(" steps=");
  sh_putdec64(container.steps);
  sh_puts(" insns=");
  sh_putdec(trace_insns);
  sh_puts(ok ? " canary=ok\n" : " canary=BAD\n");
  return ok ? (uint32_t)status : CANARY_EXIT;
}

static char *next_field(char **p) {
  while (**p == ' ' || **p == '\t') (*p)++;
  if (**p == 0 || **p == '\n') return 0;
  char *start = *p;
  while (**p != 0 && **p != ' ' && **p != '\t' && **p != '\n') (*p)++;
  if (**p == ' ' || **p == '\t') *(*p)++ = 0;
  return start;
}

static uint32_t batch(const char *path) {
  int32_t len = sh_load_file(path, manifest, MANIFEST_CAP - 1);
  if (len < 0) die("cannot read manifest", path, IO_EXIT);
  manifest[len] = 0;
  uint32_t index = 0, canary_failures = 0;
  char *p = manifest;
  while (*p != 0) {
    char *line_end = p;
    while (*line_end != 0 && *line_end != '\n') line_end++;
    int last = *line_end == 0;
    *line_end = 0;
    char *q = p;
    char *image = next_field(&q);
    char *mem = next_field(&q);
    char *budget = next_field(&q);
    char *flag = next_field(&q);
    if (image != 0) {
      if (mem == 0 || budget == 0) die("manifest line needs IMAGE MEM BUDGET", image, USAGE_EXIT);
      if (flag != 0 && !str_eq(flag, "keepkv")) die("unknown manifest flag", flag, USAGE_EXIT);
      if (flag == 0) fc_kv_global_clear();
      if (run_one(index, image, mem, parse_budget(budget)) == CANARY_EXIT) canary_failures++;
      index++;
    }
    if (last) break;
    p = line_end + 1;
  }
  sh_puts("done ");
  sh_putdec(index);
  sh_puts("\n");
  return canary_failures == 0 ? 0 : CANARY_EXIT;
}

int main(void) {
  char *argv[MAX_ARGS];
  if (sh_cmdline(cmdline, sizeof cmdline) < 0) die("no command line", 0, USAGE_EXIT);
  int argc = sh_split_args(cmdline, argv, MAX_ARGS);
  if (argc > MAX_ARGS) die("too many arguments", 0, USAGE_EXIT);
  counter_init();
  if (fc_register_default_helpers() != 0 || fc_register_helper_checked(TEST_HELPER_SUM, test_sum, sum_args) != 0 ||
      fc_register_helper_checked(TEST_HELPER_FILL, test_fill, fill_args) != 0) {
    die("helper registry full", 0, USAGE_EXIT);
  }
  fc_set_output(capture);
  fc_set_clock(board_clock_us);
  if (argc == 5 && str_eq(argv[1], "run")) return (int)run_one(0, argv[2], argv[3], parse_budget(argv[4]));
  if (argc == 3 && str_eq(argv[1], "batch")) return (int)batch(argv[2]);
  die("usage: run IMAGE MEM BUDGET | batch MANIFEST", 0, USAGE_EXIT);
  return USAGE_EXIT;
}
