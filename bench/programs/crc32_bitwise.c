// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320) of the context, one bit at a time:
// eight shift/xor steps per byte and no table, the smallest-code variant.
typedef unsigned char u8;
typedef unsigned int u32;
typedef unsigned long long u64;

u64 crc32_bitwise(u8 *ctx, u64 len)
{
    u32 crc = 0xffffffffu;
    for (u64 i = 0; i < len; i++) {
        crc ^= ctx[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1)));
    }
    return ~crc;
}
