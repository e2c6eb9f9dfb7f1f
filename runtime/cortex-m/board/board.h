/* Board facts and entry points shared by the startup code, the counter and firmwares. */
#ifndef FEMTO_BOARD_H
#define FEMTO_BOARD_H

#include <stdint.h>

/* Exit status of a firmware that took a CPU fault or an unexpected exception: distinct from
 * any status a firmware returns on purpose (keep firmware codes below 0xf0). */
#define BOARD_FAULT_EXIT 0xfa

#define BOARD_SYSCLK_HZ 25000000u

#define REG32(addr) (*(volatile uint32_t *)(addr))

/* System control block (ARMv7-M). */
#define SCB_ICSR REG32(0xe000ed04u)
#define SCB_VTOR REG32(0xe000ed08u)
#define SCB_CCR REG32(0xe000ed14u)
#define SCB_SHCSR REG32(0xe000ed24u)
#define SCB_CFSR REG32(0xe000ed28u)
#define SCB_HFSR REG32(0xe000ed2cu)
#define SCB_MMFAR REG32(0xe000ed34u)
#define SCB_BFAR REG32(0xe000ed38u)
#define NVIC_ISER0 REG32(0xe000e100u)
#define NVIC_ICPR0 REG32(0xe000e280u)

#define SCB_CCR_DIV_0_TRP (1u << 4)
#define SCB_CCR_UNALIGN_TRP (1u << 3)
#define SCB_SHCSR_MEMFAULTENA (1u << 16)
#define SCB_SHCSR_BUSFAULTENA (1u << 17)
#define SCB_SHCSR_USGFAULTENA (1u << 18)

/* External interrupt lines of mps2-an386 that this board code uses. */
#define BOARD_IRQ_TIMER0 8

/* The firmware's entry point, called by the reset handler once memory is initialised; its
 * return value becomes the QEMU exit status. */
int main(void);

#endif
