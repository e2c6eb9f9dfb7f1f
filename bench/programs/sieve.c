// Sieve of Eratosthenes on the stack: a bit array of odd numbers (448 bytes, under the 512-byte
// eBPF stack) up to the limit given as a 32-bit word in the context; returns the count and the
// sum of the primes below the limit, computed once per further word of the context.
typedef unsigned char u8;
typedef unsigned int u32 __attribute__((may_alias));
typedef unsigned long long u64;

#define WORDS 56
#define MAX_LIMIT (WORDS * 64 * 2)

u64 sieve(u8 *ctx, u64 len)
{
    const u32 *limits = (const u32 *)ctx;
    u64 rounds = len / 4;
    u64 acc = 0;
    for (u64 k = 0; k < rounds; k++) {
        u64 bits[WORDS]; /* bit i set: 2i+1 is composite */
        for (int i = 0; i < WORDS; i++)
            bits[i] = 0;
        u32 n = limits[k];
        if (n > MAX_LIMIT)
            n = MAX_LIMIT;
        for (u32 p = 3; p * p < n; p += 2) {
            u32 ip = p >> 1;
            if (bits[ip >> 6] >> (ip & 63) & 1)
                continue;
            for (u32 m = p * p; m < n; m += 2 * p) {
                u32 im = m >> 1;
                bits[im >> 6] |= 1ull << (im & 63);
            }
        }
        u64 count = n > 2 ? 1 : 0, sum = n > 2 ? 2 : 0;
        for (u32 q = 3; q < n; q += 2) {
            u32 iq = q >> 1;
            if (!(bits[iq >> 6] >> (iq & 63) & 1)) {
                count++;
                sum += q;
            }
        }
        acc = acc * 1000003 + (count << 32 | sum);
    }
    return acc;
}
