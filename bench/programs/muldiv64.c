// 64-bit multiply/divide heavy code: the context holds pairs of 64-bit words (a, b); each pair
// runs a few rounds of u64 multiply, divide and modulo, and of 32-bit divide, on values that
// depend on the previous round so nothing can be hoisted. Unsigned only: BPF v3 has no signed
// division.
typedef unsigned char u8;
typedef unsigned int u32;
typedef unsigned long long u64 __attribute__((may_alias));

u64 muldiv64(u8 *ctx, u64 len)
{
    const u64 *w = (const u64 *)ctx;
    u64 pairs = len / 16;
    u64 acc = 0x0123456789abcdefull;
    for (u64 p = 0; p < pairs; p++) {
        u64 a = w[2 * p], b = w[2 * p + 1] | 1;
        for (int round = 0; round < 4; round++) {
            u64 q = a / b;
            u64 r = a % b;
            a = a * 0x5851f42d4c957f2dull + q;
            b = (b >> 3 | 1) + r % 977;
            u32 h = (u32)(a >> 32) / ((u32)r | 1);
            acc = acc * 6364136223846793005ull + (q ^ r ^ h);
        }
    }
    return acc;
}
