/* Deterministic instruction counting on QEMU mps2-an386.
 *
 * QEMU runs the board with `-icount shift=BOARD_ICOUNT_SHIFT`: every guest instruction advances
 * virtual time by exactly 2^shift ns, and CMSDK TIMER0 counts SYSCLK (25 MHz, 40 ns) ticks of that
 * virtual time. With shift 8 an instruction is 256 ns = 6.4 ticks, so the tick count of a window
 * rounds to the exact number of instructions executed in it (quantisation error < 0.2 instruction).
 * The timer's wrap interrupt extends the 32-bit count to 64 bits. Results are exact instruction
 * counts of QEMU's model (one count per executed Thumb instruction), not cycle estimates. */
#ifndef FEMTO_COUNTER_H
#define FEMTO_COUNTER_H

#include <stdint.h>

#ifndef BOARD_ICOUNT_SHIFT
#define BOARD_ICOUNT_SHIFT 8
#endif

/* Exit status when the counter finds QEMU was not started with the matching -icount setting. */
#define COUNTER_MISCONFIGURED_EXIT 0xfb

/* Starts TIMER0, installs the wrap interrupt and calibrates the measurement overhead. Checks
 * that the tick rate matches BOARD_ICOUNT_SHIFT and exits with COUNTER_MISCONFIGURED_EXIT if not.
 * Called by counter_start() on first use; calling it earlier keeps that cost out of a window. */
void counter_init(void);

/* Opens a measurement window. Windows do not nest: a new start replaces the previous one. */
void counter_start(void);

/* Closes the window: instructions executed since counter_start(), excluding the counter's own
 * fixed overhead. counter_stop() saturates at UINT32_MAX. */
uint32_t counter_stop(void);
uint64_t counter_stop64(void);

/* Raw 64-bit tick count since counter_init() (SYSCLK ticks of virtual time). */
uint64_t counter_ticks(void);

/* Converts a tick count to instructions, rounding to nearest. */
uint64_t counter_ticks_to_instructions(uint64_t ticks);

/* Test hook: moves TIMER0 so that it wraps after `ticks` more ticks, exercising the wrap path
 * without running hundreds of millions of instructions. It jumps the tick total, so call it
 * between windows, never inside one. */
void counter_force_wrap_in(uint32_t ticks);

/* Number of timer wraps handled so far. */
uint32_t counter_wraps(void);

/* Instructions subtracted from every window (measured by counter_init). */
uint32_t counter_overhead(void);

#endif
