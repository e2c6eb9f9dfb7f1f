// Sliding-window average over 16-bit samples: the context holds the window size (32-bit, 1..64)
// followed by the samples. A running sum is updated per sample and divided by the window (a
// real division: the window is only known at run time); the averages are folded into a checksum.
typedef unsigned char u8;
typedef unsigned short u16 __attribute__((may_alias));
typedef unsigned int u32 __attribute__((may_alias));
typedef unsigned long long u64;

u64 moving_average(u8 *ctx, u64 len)
{
    if (len < 4)
        return 0;
    u64 window = *(const u32 *)ctx;
    if (window == 0 || window > 64)
        return 0;
    const u16 *s = (const u16 *)(ctx + 4);
    u64 n = (len - 4) / 2;
    u64 sum = 0, acc = 0;
    for (u64 i = 0; i < n; i++) {
        sum += s[i];
        if (i >= window)
            sum -= s[i - window];
        if (i + 1 >= window) {
            u64 avg = sum / window;
            acc = acc * 33 + avg;
        }
    }
    return acc;
}
