/* Reset and exception entry for mps2-an386: the vector table, memory initialisation, and a
 * fault reporter. Every fault is a bug in the firmware or in generated code, so the reporter
 * prints all it knows and ends the run with BOARD_FAULT_EXIT instead of trying to recover. */
#include "board.h"
#include "semihost.h"

extern uint32_t __stack_top;
extern uint32_t __data_start, __data_end, __data_load;
extern uint32_t __bss_start, __bss_end;

void reset_handler(void) __attribute__((noreturn));
void fault_entry(void);
void fault_report(const uint32_t *frame, uint32_t exc_return) __attribute__((noreturn, used));

/* Interrupt handlers a module may provide; unclaimed ones land in the fault reporter, since an
 * interrupt nobody enabled on purpose means a misconfigured device. */
#define WEAK_FAULT __attribute__((weak, alias("fault_entry")))
void nmi_handler(void) WEAK_FAULT;
void svc_handler(void) WEAK_FAULT;
void debugmon_handler(void) WEAK_FAULT;
void pendsv_handler(void) WEAK_FAULT;
void systick_handler(void) WEAK_FAULT;
void timer0_irq_handler(void) WEAK_FAULT;
void timer1_irq_handler(void) WEAK_FAULT;

typedef void (*vector_t)(void);

#define BOARD_NUM_IRQ 32

__attribute__((section(".isr_vector"), used)) const vector_t board_vectors[16 + BOARD_NUM_IRQ] = {
    [0] = (vector_t)&__stack_top,
    [1] = reset_handler,
    [2] = nmi_handler,
    [3] = fault_entry, /* HardFault */
    [4] = fault_entry, /* MemManage */
    [5] = fault_entry, /* BusFault */
    [6] = fault_entry, /* UsageFault */
    [11] = svc_handler,
    [12] = debugmon_handler,
    [14] = pendsv_handler,
    [15] = systick_handler,
    [16 + 0] = fault_entry,  [16 + 1] = fault_entry,  [16 + 2] = fault_entry,
    [16 + 3] = fault_entry,  [16 + 4] = fault_entry,  [16 + 5] = fault_entry,
    [16 + 6] = fault_entry,  [16 + 7] = fault_entry,  [16 + BOARD_IRQ_TIMER0] = timer0_irq_handler,
    [16 + 9] = timer1_irq_handler,
    [16 + 10] = fault_entry, [16 + 11] = fault_entry, [16 + 12] = fault_entry,
    [16 + 13] = fault_entry, [16 + 14] = fault_entry, [16 + 15] = fault_entry,
    [16 + 16] = fault_entry, [16 + 17] = fault_entry, [16 + 18] = fault_entry,
    [16 + 19] = fault_entry, [16 + 20] = fault_entry, [16 + 21] = fault_entry,
    [16 + 22] = fault_entry, [16 + 23] = fault_entry, [16 + 24] = fault_entry,
    [16 + 25] = fault_entry, [16 + 26] = fault_entry, [16 + 27] = fault_entry,
    [16 + 28] = fault_entry, [16 + 29] = fault_entry, [16 + 30] = fault_entry,
    [16 + 31] = fault_entry,
};

void reset_handler(void) {
  uint32_t *src = &__data_load;
  for (uint32_t *dst = &__data_start; dst < &__data_end;) *dst++ = *src++;
  for (uint32_t *dst = &__bss_start; dst < &__bss_end;) *dst++ = 0;

  SCB_VTOR = (uint32_t)board_vectors;
  /* Separate handlers name the fault class in CFSR without escalating to HardFault. */
  SCB_SHCSR |= SCB_SHCSR_MEMFAULTENA | SCB_SHCSR_BUSFAULTENA | SCB_SHCSR_USGFAULTENA;
  /* eBPF defines x/0 == 0 and x%0 == x, and generated code tests the divisor itself: SDIV/UDIV
   * by zero must return 0, not trap. Unaligned single loads/stores are legal (eBPF permits them);
   * LDRD/LDM still fault on misalignment, which is architectural. */
  SCB_CCR &= ~(SCB_CCR_DIV_0_TRP | SCB_CCR_UNALIGN_TRP);
  __asm__ volatile("dsb\n\tisb" ::: "memory");

  int code = main();
  sh_exit((uint32_t)code);
}

/* The reporter runs on its own stack: the fault may come from a stack overflow or a wild SP. */
#define FAULT_STACK_BYTES 1024
#define FAULT_STACK_STR "1024" /* the same number, for the assembler */
__attribute__((used, aligned(8))) uint32_t board_fault_stack[FAULT_STACK_BYTES / 4];

/* Finds the frame the core stacked (MSP or PSP per EXC_RETURN bit 2) before any C code can
 * disturb the registers. */
__attribute__((naked)) void fault_entry(void) {
  __asm__ volatile(
      "tst lr, #4\n\t"
      "ite eq\n\t"
      "mrseq r0, msp\n\t"
      "mrsne r0, psp\n\t"
      "mov r1, lr\n\t"
      "ldr r2, =board_fault_stack + " FAULT_STACK_STR "\n\t"
      "mov sp, r2\n\t"
      "b fault_report\n\t"
      ".ltorg\n\t");
}

static const char *const exception_names[16] = {
    "thread", "reset",   "NMI", "HardFault", "MemManage", "BusFault", "UsageFault", "reserved7",
    "reserved8", "reserved9", "reserved10", "SVCall", "DebugMonitor", "reserved13", "PendSV", "SysTick",
};

#define CFSR_MSTKERR (1u << 4)
#define CFSR_STKERR (1u << 12)

static void put_reg(const char *name, uint32_t value) {
  sh_puts(name);
  sh_puts("=");
  sh_puthex(value);
  sh_puts(" ");
}

void fault_report(const uint32_t *frame, uint32_t exc_return) {
  uint32_t ipsr;
  __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
  uint32_t exc = ipsr & 0x1ffu;

  sh_puts("\n*** FAULT: ");
  if (exc < 16) {
    sh_puts(exception_names[exc]);
  } else {
    sh_puts("unexpected IRQ ");
    sh_putdec(exc - 16);
  }
  sh_puts(" (exception ");
  sh_putdec(exc);
  sh_puts(")\n");
  /* A failed exception entry (MSTKERR, STKERR) leaves no frame: reading one would fault again. */
  if ((SCB_CFSR & (CFSR_MSTKERR | CFSR_STKERR)) != 0) {
    sh_puts("stacking failed: no stacked registers (SP was ");
    sh_puthex((uint32_t)frame);
    sh_puts(")\n");
  } else {
    put_reg("r0", frame[0]);
    put_reg("r1", frame[1]);
    put_reg("r2", frame[2]);
    put_reg("r3", frame[3]);
    sh_puts("\n");
    put_reg("r12", frame[4]);
    put_reg("lr", frame[5]);
    put_reg("pc", frame[6]);
    put_reg("xpsr", frame[7]);
    sh_puts("\n");
  }
  put_reg("CFSR", SCB_CFSR);
  put_reg("HFSR", SCB_HFSR);
  put_reg("MMFAR", SCB_MMFAR);
  put_reg("BFAR", SCB_BFAR);
  put_reg("EXC_RETURN", exc_return);
  sh_puts("\n");
  sh_exit(BOARD_FAULT_EXIT);
}
