// A packet parser: the context holds records, each a little-endian 16-bit captured length then the
// frame, padded so the next record starts 4-aligned (a frame starts 2 bytes into its record, the
// Linux NET_IP_ALIGN trick, which leaves the IPv4 header 4-aligned). Per frame: Ethernet, up to two
// VLAN tags (802.1Q / 802.1ad), IPv4 with header checksum verification, then UDP or TCP ports.
// Network byte order is read with byte-swapping loads, as real parsers do.
typedef unsigned char u8;
typedef unsigned short u16 __attribute__((may_alias));
typedef unsigned int u32 __attribute__((may_alias));
typedef unsigned long long u64;

#define ETH_P_IP 0x0800
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88a8
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17

static inline u64 be16(const u8 *p) { return __builtin_bswap16(*(const u16 *)p); }
static inline u64 be32(const u8 *p) { return __builtin_bswap32(*(const u32 *)p); }

u64 packet_parser(u8 *ctx, u64 len)
{
    u64 acc = 0, good = 0, bad = 0, other = 0;
    u64 at = 0;
    while (at + 2 <= len) {
        u64 caplen = *(const u16 *)(ctx + at);
        const u8 *p = ctx + at + 2;
        at = (at + 2 + caplen + 3) & ~3ull;
        if (at > len || caplen < 14) {
            bad++;
            break;
        }
        acc = acc * 31 + (be16(p) ^ be32(p + 2) ^ be32(p + 6) ^ be16(p + 10));
        u64 type = be16(p + 12);
        u64 off = 14;
        for (int tags = 0; tags < 2 && (type == ETH_P_8021Q || type == ETH_P_8021AD); tags++) {
            if (off + 4 > caplen)
                break;
            acc = acc * 31 + (be16(p + off) & 0xfff);
            type = be16(p + off + 2);
            off += 4;
        }
        if (type != ETH_P_IP || off + 20 > caplen) {
            other++;
            continue;
        }
        const u8 *ip = p + off;
        u64 ihl = (u64)(ip[0] & 15) * 4;
        if ((ip[0] >> 4) != 4 || ihl < 20 || off + ihl > caplen) {
            bad++;
            continue;
        }
        u64 sum = 0;
        for (u64 i = 0; i < ihl; i += 2)
            sum += be16(ip + i);
        sum = (sum & 0xffff) + (sum >> 16);
        sum = (sum & 0xffff) + (sum >> 16);
        if (sum != 0xffff) {
            bad++;
            continue;
        }
        good++;
        u64 total = be16(ip + 2);
        u64 proto = ip[9];
        acc = acc * 31 + (be32(ip + 12) ^ (be32(ip + 16) << 1) ^ total ^ (proto << 40));
        const u8 *l4 = ip + ihl;
        u64 l4off = off + ihl;
        if (proto == IPPROTO_UDP && l4off + 8 <= caplen)
            acc = acc * 31 + (be16(l4) << 32 | be16(l4 + 2) << 16 | be16(l4 + 4));
        else if (proto == IPPROTO_TCP && l4off + 20 <= caplen)
            acc = acc * 31 + (be16(l4) << 48 | be16(l4 + 2) << 32 | be32(l4 + 4));
    }
    return acc ^ (good << 48) ^ (bad << 40) ^ (other << 32);
}
