// Fletcher-32 over the whole context: the benchmark of the femto-container papers (360 bytes).
// The block of 359 words is the largest for which the 32-bit sums cannot overflow before the
// modulo, so the inner loop carries no reduction.
typedef unsigned char u8;
typedef unsigned int u32;
typedef unsigned long long u64;

u64 fletcher32(u8 *ctx, u64 len)
{
    u32 c0 = 0, c1 = 0;
    u64 words = len / 2;
    const u8 *data = ctx;
    while (words > 0) {
        u64 block = words > 359 ? 359 : words;
        words -= block;
        do {
            c0 += (u32)data[0] | ((u32)data[1] << 8);
            c1 += c0;
            data += 2;
        } while (--block);
        c0 %= 65535;
        c1 %= 65535;
    }
    return (u64)(c1 << 16 | c0);
}
