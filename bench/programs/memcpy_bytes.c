// A byte-by-byte copy of the first half of the context onto the second half, then an FNV-1a hash
// of the copy. The destination is volatile so that no compiler turns the loop into a call to
// memcpy (which clang cannot emit for BPF, and which would measure libc rather than the engine).
typedef unsigned char u8;
typedef unsigned long long u64;

u64 memcpy_bytes(u8 *ctx, u64 len)
{
    u64 half = len / 2;
    const u8 *src = ctx;
    volatile u8 *dst = ctx + half;
    for (u64 i = 0; i < half; i++)
        dst[i] = src[i];
    u64 h = 0xcbf29ce484222325ull;
    for (u64 i = 0; i < half; i++)
        h = (h ^ ctx[half + i]) * 0x100000001b3ull;
    return h;
}
