/*
 * peer.c - trusted proxies and forwarded client addresses (see peer.h).
 */
#include "peer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define PEER_STR_(x) #x
#define PEER_STR(x) PEER_STR_(x)

/* Longest entry of a list or hop of a header looked at ("addr/prefix"). */
#define PEER_ENTRY_LEN 64

/*
 * Reads the address text s (IPv4 or IPv6, without brackets or port) into
 * family and bytes; an IPv4-mapped IPv6 address becomes IPv4. Returns 0 or -1.
 */
static int
parse_addr(const char *s, int *family, unsigned char bytes[16])
{
    struct in6_addr a6;
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    if (inet_pton(AF_INET, s, bytes) == 1) {
        *family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, s, &a6) != 1)
        return -1;
    if (memcmp(a6.s6_addr, mapped, sizeof mapped) == 0) {
        *family = AF_INET;
        memcpy(bytes, a6.s6_addr + 12, 4);
    } else {
        *family = AF_INET6;
        memcpy(bytes, a6.s6_addr, 16);
    }
    return 0;
}

/* Whether family/bytes fall in net. */
static bool
net_contains(const struct peer_net *net, int family, const unsigned char bytes[16])
{
    unsigned full = net->prefix / 8, rest = net->prefix % 8;

    if (net->family != family)
        return false;
    if (memcmp(net->addr, bytes, full) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (net->addr[full] & mask) == (bytes[full] & mask);
}

int
peer_nets_parse(const char *list, struct peer_net *out, size_t max, const char **why)
{
    size_t n = 0;
    const char *p = list;

    while (p && *p) {
        size_t len;
        char entry[PEER_ENTRY_LEN];
        struct peer_net net;

        p += strspn(p, ", \t");
        len = strcspn(p, ", \t");
        if (len == 0)
            break;
        if (len >= sizeof entry) {
            *why = "an entry is too long to be an address or CIDR block";
            return -1;
        }
        memcpy(entry, p, len);
        entry[len] = '\0';
        p += len;

        char *slash = strchr(entry, '/');
        if (slash)
            *slash = '\0';
        memset(&net, 0, sizeof net);
        if (parse_addr(entry, &net.family, net.addr) < 0) {
            *why = "expected IPv4 or IPv6 addresses or CIDR blocks (a.b.c.d/n, x::/n)";
            return -1;
        }
        /* "::ffff:10.0.0.0/104" names an IPv4 block, its prefix counted in IPv6 bits. */
        bool mapped = net.family == AF_INET && strchr(entry, ':') != NULL;
        unsigned bits = net.family == AF_INET && !mapped ? 32 : 128;
        net.prefix = 32;
        if (slash) {
            char *end;
            long v = strtol(slash + 1, &end, 10);
            if (slash[1] < '0' || slash[1] > '9' || *end || v < 0 || v > (long)bits) {
                *why = "a CIDR prefix length must be 0..32 (IPv4) or 0..128 (IPv6)";
                return -1;
            }
            if (mapped && v < 96) {
                *why = "an IPv4-mapped block needs a prefix of at least 96";
                return -1;
            }
            net.prefix = (unsigned)(mapped ? v - 96 : v);
        } else if (net.family == AF_INET6) {
            net.prefix = 128;
        }
        if (n == max) {
            *why = "too many entries (at most " PEER_STR(PEER_MAX_NETS) ")";
            return -1;
        }
        out[n++] = net;
    }
    return (int)n;
}

bool
peer_in_nets(const char *addr, const struct peer_net *nets, size_t n)
{
    int family;
    unsigned char bytes[16];

    if (addr == NULL || parse_addr(addr, &family, bytes) < 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (net_contains(&nets[i], family, bytes))
            return true;
    return false;
}

/*
 * Copies the hop s (len bytes, blanks around it trimmed) as a canonical
 * address into out. Returns 0, or -1 when it is not a plain address.
 */
static int
hop_addr(const char *s, size_t len, char out[PEER_ADDR_LEN], int *family, unsigned char bytes[16])
{
    char hop[PEER_ENTRY_LEN];

    while (len && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (len == 0 || len >= sizeof hop)
        return -1;
    memcpy(hop, s, len);
    hop[len] = '\0';
    if (parse_addr(hop, family, bytes) < 0)
        return -1;
    return inet_ntop(*family, bytes, out, PEER_ADDR_LEN) ? 0 : -1;
}

int
peer_forwarded(const char *xff, const struct peer_net *nets, size_t n, char out[PEER_ADDR_LEN])
{
    int family;
    unsigned char bytes[16];

    if (xff == NULL || *xff == '\0')
        return -1;
    size_t end = strlen(xff);
    for (int hops = 0; hops < PEER_MAX_HOPS; hops++) {
        size_t start = end;
        while (start > 0 && xff[start - 1] != ',')
            start--;
        if (hop_addr(xff + start, end - start, out, &family, bytes) < 0)
            return -1;
        bool trusted = false;
        for (size_t i = 0; i < n && !trusted; i++)
            trusted = net_contains(&nets[i], family, bytes);
        if (!trusted || start == 0)
            return 0; /* the leftmost hop is the client, trusted or not */
        end = start - 1;
    }
    return -1;
}
