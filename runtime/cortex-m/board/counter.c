#include "counter.h"

#include "board.h"
#include "semihost.h"

#define TIMER0_BASE 0x40000000u
#define TIMER0_CTRL REG32(TIMER0_BASE + 0x0u)
#define TIMER0_VALUE REG32(TIMER0_BASE + 0x4u)
#define TIMER0_RELOAD REG32(TIMER0_BASE + 0x8u)
#define TIMER0_INTCLEAR REG32(TIMER0_BASE + 0xcu) /* reads as INTSTATUS */

#define TIMER_CTRL_ENABLE (1u << 0)
#define TIMER_CTRL_IRQ_ENABLE (1u << 3)

#if BOARD_ICOUNT_SHIFT < 7 || BOARD_ICOUNT_SHIFT > 10
#error "BOARD_ICOUNT_SHIFT must be 7..10: below 7 a tick count no longer rounds to an exact instruction count"
#endif

static volatile uint32_t wraps;
static int initialised;
static uint64_t window_start;
/* Separate for each stop function: their prologues differ with the optimisation level. */
static uint32_t overhead32;
static uint32_t overhead64;

void timer0_irq_handler(void) {
  TIMER0_INTCLEAR = 1u;
  wraps++;
}

/* Ticks elapsed since the timer started. The wrap interrupt is masked while sampling so the wrap
 * count and VALUE belong together; a wrap that is pending but not yet serviced is added here. */
__attribute__((always_inline)) static inline uint64_t sample(void) {
  uint32_t primask;
  __asm__ volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
  uint32_t w = wraps;
  uint32_t v = TIMER0_VALUE;
  if (TIMER0_INTCLEAR & 1u) {
    w++;
    v = TIMER0_VALUE;
  }
  __asm__ volatile("msr primask, %0" ::"r"(primask) : "memory");
  return ((uint64_t)w << 32) + (0xffffffffu - v);
}

uint64_t counter_ticks(void) { return sample(); }

uint64_t counter_ticks_to_instructions(uint64_t ticks) {
  /* instructions = ticks * 40 ns / 2^shift ns = ticks * 5 / 2^(shift-3), rounded. Splitting the
   * product keeps it inside 64 bits for any tick count. */
  const unsigned s = BOARD_ICOUNT_SHIFT - 3;
  uint64_t hi = (ticks >> s) * 5u;
  uint64_t lo = ((ticks & ((1u << s) - 1u)) * 5u + (1u << (s - 1))) >> s;
  return hi + lo;
}

/* 2 instructions per iteration (subs + bne); n must be >= 1. */
__attribute__((noinline)) static void calibration_loop(uint32_t n) {
  __asm__ volatile("1: subs %0, %0, #1\n\tbne 1b" : "+r"(n)::"cc");
}

static void misconfigured(const char *what, uint64_t got, uint64_t want) {
  sh_puts("counter: ");
  sh_puts(what);
  sh_puts(": measured ");
  sh_putdec64(got);
  sh_puts(", expected ");
  sh_putdec64(want);
  sh_puts(" (is QEMU running with -icount shift=");
  sh_putdec(BOARD_ICOUNT_SHIFT);
  sh_puts("?)\n");
  sh_exit(COUNTER_MISCONFIGURED_EXIT);
}

void counter_init(void) {
  if (initialised) return;
  initialised = 1;
  wraps = 0;
  TIMER0_CTRL = 0;
  TIMER0_INTCLEAR = 1u;
  TIMER0_RELOAD = 0xffffffffu;
  TIMER0_VALUE = 0xffffffffu;
  NVIC_ICPR0 = 1u << BOARD_IRQ_TIMER0;
  NVIC_ISER0 = 1u << BOARD_IRQ_TIMER0;
  TIMER0_CTRL = TIMER_CTRL_ENABLE | TIMER_CTRL_IRQ_ENABLE;

  /* The overhead is whatever an empty window costs: the tail of counter_start, the call into
   * counter_stop and its head. Measured rather than hard-coded so it follows compiler changes. */
  overhead32 = 0;
  overhead64 = 0;
  counter_start();
  uint32_t empty32 = counter_stop();
  counter_start();
  uint64_t empty64 = counter_stop64();
  overhead32 = empty32;
  overhead64 = (uint32_t)empty64;

  /* Two loops whose difference is exactly 2 * 1000 instructions prove the tick rate matches the
   * shift this code was built for; a mismatch would make every later count silently wrong. */
  counter_start();
  calibration_loop(1);
  uint64_t one = counter_stop64();
  counter_start();
  calibration_loop(1001);
  uint64_t many = counter_stop64();
  if (many - one != 2000u) misconfigured("calibration loop of 2000 instructions", many - one, 2000u);
}

/* noinline: counter_init calibrates these exact bodies, so no caller may get a different copy. */
__attribute__((noinline)) void counter_start(void) {
  if (!initialised) counter_init();
  window_start = sample();
}

static uint64_t window_instructions(uint64_t end, uint32_t overhead) {
  uint64_t insns = counter_ticks_to_instructions(end - window_start);
  return insns > overhead ? insns - overhead : 0;
}

__attribute__((noinline)) uint64_t counter_stop64(void) {
  uint64_t end = sample();
  return window_instructions(end, overhead64);
}

__attribute__((noinline)) uint32_t counter_stop(void) {
  uint64_t end = sample();
  uint64_t insns = window_instructions(end, overhead32);
  return insns > 0xffffffffu ? 0xffffffffu : (uint32_t)insns;
}

void counter_force_wrap_in(uint32_t ticks) {
  if (!initialised) counter_init();
  TIMER0_VALUE = ticks;
}

uint32_t counter_wraps(void) { return wraps; }

uint32_t counter_overhead(void) { return overhead32; }
