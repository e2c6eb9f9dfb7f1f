/* Board probe: exercises every service of the emulated board so test/board.test.ts can check
 * them on QEMU. Commands come from the semihosting command line and run in order:
 *   load PATH        read a host file; print "load len=N fletcher32=0x........"
 *   count N          count the instructions of an N-iteration 2-instruction loop; "count N=C"
 *   count-empty      count an empty window; "count-empty=C" (0 once overhead is subtracted)
 *   count-wrap N     like count, with TIMER0 forced to wrap inside the window; "count-wrap N=C wraps=W"
 *   div0             divide by zero (must not trap); "div0 udiv=Q sdiv=Q"
 *   fault undef|bus|stack  execute an undefined instruction / read an unmapped address /
 *                    push with SP pointing at unmapped memory
 *   spin             loop forever (for the harness timeout)
 *   exit CODE        exit with CODE
 * Unknown commands or bad numbers exit with 2, after a message. */
#include <stdint.h>

#include "board.h"
#include "counter.h"
#include "semihost.h"

#define PROBE_USAGE_EXIT 2
#define MAX_ARGS 128

/* An address no device or memory of mps2-an386 answers: reads fault with a precise BusFault. */
#define UNMAPPED_ADDR 0x30000000u

static uint8_t file_buf[1u << 20];
static char cmdline[4096];

static int str_eq(const char *a, const char *b) {
  while (*a != 0 && *a == *b) {
    a++;
    b++;
  }
  return *a == *b;
}

static void usage(const char *why, const char *arg) {
  sh_puts("probe: ");
  sh_puts(why);
  if (arg != 0) {
    sh_puts(": ");
    sh_puts(arg);
  }
  sh_puts("\n");
  sh_exit(PROBE_USAGE_EXIT);
}

static uint32_t parse_u32(const char *s) {
  if (s == 0 || *s == 0) usage("missing number", 0);
  uint32_t v = 0;
  for (const char *p = s; *p != 0; p++) {
    if (*p < '0' || *p > '9') usage("not a decimal number", s);
    uint32_t d = (uint32_t)(*p - '0');
    if (v > (0xffffffffu - d) / 10u) usage("number too large", s);
    v = v * 10u + d;
  }
  return v;
}

/* Fletcher-32 over little-endian 16-bit words, an odd last byte padded with zero, both sums
 * starting at 0 and reduced mod 65535. */
static uint32_t fletcher32(const uint8_t *data, uint32_t len) {
  uint32_t sum1 = 0, sum2 = 0;
  for (uint32_t i = 0; i < len; i += 2) {
    uint32_t word = data[i];
    if (i + 1 < len) word |= (uint32_t)data[i + 1] << 8;
    sum1 = (sum1 + word) % 65535u;
    sum2 = (sum2 + sum1) % 65535u;
  }
  return (sum2 << 16) | sum1;
}

/* Exactly 2 instructions per iteration; n == 0 runs none. */
__attribute__((noinline)) static void spin_loop(uint32_t n) {
  if (n == 0) return;
  __asm__ volatile("1: subs %0, %0, #1\n\tbne 1b" : "+r"(n)::"cc");
}

static void cmd_load(const char *path) {
  if (path == 0) usage("load needs a path", 0);
  int32_t len = sh_load_file(path, file_buf, sizeof file_buf);
  if (len == -2) usage("file larger than the probe's buffer", path);
  if (len < 0) usage("cannot read host file", path);
  sh_puts("load len=");
  sh_putdec((uint32_t)len);
  sh_puts(" fletcher32=");
  sh_puthex(fletcher32(file_buf, (uint32_t)len));
  sh_puts("\n");
}

static void cmd_count(const char *arg, int wrap) {
  uint32_t n = parse_u32(arg);
  counter_init();
  uint32_t wraps_before = counter_wraps();
  /* About a third of the loop's ticks in, so the wrap lands inside the window. */
  if (wrap) counter_force_wrap_in(n * 4u + 64u);
  counter_start();
  spin_loop(n);
  uint32_t c = counter_stop();
  sh_puts(wrap ? "count-wrap " : "count ");
  sh_putdec(n);
  sh_puts("=");
  sh_putdec(c);
  if (wrap) {
    sh_puts(" wraps=");
    sh_putdec(counter_wraps() - wraps_before);
  }
  sh_puts("\n");
}

static void cmd_count_empty(void) {
  counter_init();
  counter_start();
  uint32_t c = counter_stop();
  sh_puts("count-empty=");
  sh_putdec(c);
  sh_puts(" overhead=");
  sh_putdec(counter_overhead());
  sh_puts("\n");
}

static void cmd_div0(void) {
  volatile uint32_t zero = 0;
  volatile uint32_t num = 1234;
  uint32_t q = num / zero;
  int32_t sq = (int32_t)num / (int32_t)zero;
  sh_puts("div0 udiv=");
  sh_putdec(q);
  sh_puts(" sdiv=");
  sh_putint(sq);
  sh_puts("\n");
}

static void cmd_fault(const char *kind) {
  if (kind == 0) usage("fault needs undef, bus or stack", 0);
  sh_puts("probe: about to fault (");
  sh_puts(kind);
  sh_puts(")\n");
  if (str_eq(kind, "undef")) {
    __asm__ volatile("udf #0");
  } else if (str_eq(kind, "bus")) {
    volatile uint32_t *p = (volatile uint32_t *)UNMAPPED_ADDR;
    (void)*p;
  } else if (str_eq(kind, "stack")) {
    __asm__ volatile("mov sp, %0\n\tpush {r0}" ::"r"(UNMAPPED_ADDR + 0x100u) : "memory");
  } else {
    usage("unknown fault kind", kind);
  }
  sh_puts("probe: the fault did not happen\n");
  sh_exit(1);
}

int main(void) {
  if (sh_cmdline(cmdline, sizeof cmdline) < 0) usage("cannot read the command line", 0);
  char *argv[MAX_ARGS];
  int argc = sh_split_args(cmdline, argv, MAX_ARGS);
  if (argc > MAX_ARGS) usage("too many arguments", 0);
  /* argv[0] is the program name. */
  for (int i = 1; i < argc; i++) {
    const char *cmd = argv[i];
    const char *next = i + 1 < argc ? argv[i + 1] : 0;
    if (str_eq(cmd, "load")) {
      cmd_load(next);
      i++;
    } else if (str_eq(cmd, "count")) {
      cmd_count(next, 0);
      i++;
    } else if (str_eq(cmd, "count-wrap")) {
      cmd_count(next, 1);
      i++;
    } else if (str_eq(cmd, "count-empty")) {
      cmd_count_empty();
    } else if (str_eq(cmd, "div0")) {
      cmd_div0();
    } else if (str_eq(cmd, "fault")) {
      cmd_fault(next);
      i++;
    } else if (str_eq(cmd, "spin")) {
      for (;;) __asm__ volatile("");
    } else if (str_eq(cmd, "exit")) {
      return (int)parse_u32(next);
    } else {
      usage("unknown command", cmd);
    }
  }
  sh_puts("probe: done\n");
  return 0;
}
