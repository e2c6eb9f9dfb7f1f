// Bit manipulation on every 32-bit word of the context: reverse its bits with the classic
// mask-and-shift ladder, count its set bits with SWAR arithmetic, and fold both into a checksum.
// Written out by hand rather than with builtins, so every engine runs the same shifts and masks.
typedef unsigned char u8;
typedef unsigned int u32 __attribute__((may_alias));
typedef unsigned long long u64;

u64 bitswap(u8 *ctx, u64 len)
{
    const u32 *w = (const u32 *)ctx;
    u64 n = len / 4;
    u64 acc = 0;
    u64 bits = 0;
    for (u64 i = 0; i < n; i++) {
        u32 x = w[i];
        u32 r = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
        r = ((r >> 2) & 0x33333333u) | ((r & 0x33333333u) << 2);
        r = ((r >> 4) & 0x0f0f0f0fu) | ((r & 0x0f0f0f0fu) << 4);
        r = ((r >> 8) & 0x00ff00ffu) | ((r & 0x00ff00ffu) << 8);
        r = (r >> 16) | (r << 16);
        u32 c = x - ((x >> 1) & 0x55555555u);
        c = (c & 0x33333333u) + ((c >> 2) & 0x33333333u);
        c = (((c + (c >> 4)) & 0x0f0f0f0fu) * 0x01010101u) >> 24;
        bits += c;
        acc = (acc << 7 | acc >> 57) ^ r;
    }
    return acc ^ (bits << 48);
}
