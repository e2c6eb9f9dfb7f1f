// Integer parsing from text: the context is ASCII decimal numbers, optionally negative, separated
// by spaces and newlines. Each is parsed digit by digit and folded into a sum and a hash.
typedef unsigned char u8;
typedef unsigned long long u64;

u64 atoi_sum(u8 *ctx, u64 len)
{
    u64 sum = 0, hash = 0, count = 0;
    u64 i = 0;
    while (i < len) {
        u8 c = ctx[i];
        if (c != '-' && (c < '0' || c > '9')) {
            i++;
            continue;
        }
        int neg = c == '-';
        if (neg)
            i++;
        u64 v = 0;
        while (i < len && ctx[i] >= '0' && ctx[i] <= '9') {
            v = v * 10 + (ctx[i] - '0');
            i++;
        }
        if (neg)
            v = 0 - v;
        sum += v;
        hash = (hash ^ v) * 0x9e3779b97f4a7c15ull;
        count++;
    }
    return sum ^ hash ^ (count << 56);
}
