// Fletcher-32 over the container's memory: the benchmark of the femto-container papers.
// Built for eBPF with `clang -O2 -target bpf -c`; built natively (with FEMTOJIT_NATIVE_MAIN) the
// same source reads its input from stdin, so the demo can compare both answers.
// No libc headers: under -target bpf they would pull in the host's multilib headers.
typedef __UINT8_TYPE__ uint8_t;
typedef __UINT32_TYPE__ uint32_t;
typedef __UINT64_TYPE__ uint64_t;

uint64_t fletcher32(const uint8_t *data, uint64_t len)
{
    uint32_t c0 = 0, c1 = 0;
    uint64_t words = len / 2;
    while (words > 0) {
        uint64_t block = words > 359 ? 359 : words;
        words -= block;
        do {
            c0 += (uint32_t)data[0] | ((uint32_t)data[1] << 8);
            c1 += c0;
            data += 2;
        } while (--block);
        c0 %= 65535;
        c1 %= 65535;
    }
    return (uint64_t)(c1 << 16 | c0);
}

#ifdef FEMTOJIT_NATIVE_MAIN
#include <stdio.h>
int main(void)
{
    static uint8_t buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, stdin);
    printf("0x%llx\n", (unsigned long long)fletcher32(buf, n));
    return 0;
}
#endif
