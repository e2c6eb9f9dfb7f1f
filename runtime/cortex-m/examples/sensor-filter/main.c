/* Example firmware: a container compiled ahead of time and linked in as a C array, run on a
 * context the firmware fills (here: a synthetic waveform with spikes), with the fc runtime.
 *
 *   clang -O2 -target bpf -mcpu=v3 -c filter.c -o filter.o
 *   femtojit compile filter.o --target thumb --emit c --entry sensor_filter -o filter_image.c
 *     -> filter_image.c (const uint8_t filter_image[], 4-byte aligned) and filter_image.h
 *
 * The same container as eBPF bytecode for the C interpreter (runtime/device-engine.ts
 * packBytecode + bytecodeCSource -> filter_bytecode.c/.h) runs through fc_load_bytecode and the
 * same fc_run; build with -DWITH_BYTECODE to include it. Prints one line per engine:
 *   <engine> status=<n> r0=<hex> value=<n> spikes=<n> */
#include <stdint.h>

#include "fc.h"
#include "filter_image.h"
#include "semihost.h"
#ifdef WITH_BYTECODE
#include "filter_bytecode.h"
#endif

struct samples {
  uint32_t n;
  int16_t v[64];
};

static struct samples ctx;
static fc_container_t box;
static uint8_t arena[FC_STACK_SIZE] __attribute__((aligned(8)));

static void print_to_console(const char *text, size_t len) {
  for (size_t i = 0; i < len; i++) sh_putc(text[i]);
}

static void report(const char *engine, int status, uint64_t r0) {
  sh_puts(engine);
  sh_puts(" status=");
  sh_putdec((uint32_t)status);
  sh_puts(" r0=");
  sh_puthex((uint32_t)r0);
  if (status == FC_OK) {
    sh_puts(" value=");
    sh_putint((int32_t)(r0 >> 16) - 32768);
    sh_puts(" spikes=");
    sh_putdec((uint32_t)(r0 & 0xffffu));
  } else if (status < FC_ERR_SHORT) {
    sh_puts(" pc=");
    sh_putdec(box.fault.pc);
  }
  sh_puts("\n");
}

static int run(const char *engine, int loaded) {
  uint64_t r0 = 0;
  int status = loaded == FC_OK ? fc_run(&box, &ctx, sizeof ctx, &r0) : loaded;
  report(engine, status, r0);
  return status;
}

int main(void) {
  /* A slow ramp with a spike every 13th sample. */
  ctx.n = 64;
  for (uint32_t i = 0; i < 64; i++) ctx.v[i] = (int16_t)((int32_t)(i * 37u % 200u) - 100 + (i % 13u == 5u ? 3000 : 0));

  fc_register_default_helpers();
  fc_set_output(print_to_console);
  fc_init(&box, arena, sizeof arena);
  int failed = run("thumb", fc_load(&box, filter_image, filter_image_len)) != FC_OK;
#ifdef WITH_BYTECODE
  failed |= run("interp", fc_load_bytecode(&box, filter_bytecode, filter_bytecode_len)) != FC_OK;
#endif
  return failed;
}
