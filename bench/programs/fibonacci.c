// Iterative 64-bit Fibonacci numbers (wrapping past F(93)), once for every 32-bit n in the context:
// a tight dependent add chain with no memory traffic inside the loop.
typedef unsigned char u8;
typedef unsigned int u32 __attribute__((may_alias));
typedef unsigned long long u64;

u64 fibonacci(u8 *ctx, u64 len)
{
    const u32 *ns = (const u32 *)ctx;
    u64 count = len / 4;
    u64 acc = 0;
    for (u64 k = 0; k < count; k++) {
        u64 a = 0, b = 1;
        for (u32 i = ns[k]; i > 0; i--) {
            u64 t = a + b;
            a = b;
            b = t;
        }
        acc = (acc << 13 | acc >> 51) + a;
    }
    return acc;
}
