// Bubble sort of the 32-bit words of the context, in place, then a position-weighted checksum of
// the sorted array (so a wrong order changes the answer, not only a wrong multiset).
typedef unsigned char u8;
typedef unsigned int u32 __attribute__((may_alias));
typedef unsigned long long u64;

u64 bubble_sort(u8 *ctx, u64 len)
{
    u32 *a = (u32 *)ctx;
    u64 n = len / 4;
    for (u64 end = n; end > 1; end--) {
        int swapped = 0;
        for (u64 i = 1; i < end; i++) {
            u32 x = a[i - 1], y = a[i];
            if (x > y) {
                a[i - 1] = y;
                a[i] = x;
                swapped = 1;
            }
        }
        if (!swapped)
            break;
    }
    u64 sum = 0;
    for (u64 i = 0; i < n; i++)
        sum = sum * 31 + (u64)a[i] * (i + 1);
    return sum;
}
