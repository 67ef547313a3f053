/*
 * peer.c - trusted proxies, forwarded client addresses, and the per-address
 * caps on connections and handshakes (see peer.h).
 */
#include "peer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <uthash.h>

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

/* An address as the table keys it: family, then its bytes (IPv6: the /64). */
#define PEER_KEY_LEN 17

/* One tracked address. Owned by its table; freed once it holds no
 * connection and its bucket is full again (it then says nothing new). */
struct peer_slot {
    unsigned char key[PEER_KEY_LEN];
    uint32_t conns;    /* connections held (peer_hold() minus peer_release()) */
    int64_t milli;     /* handshake tokens, in thousandths */
    int64_t at_ms;     /* when milli was last brought up to date */
    int64_t logged_ms; /* last refusal the caller was told to log */
    UT_hash_handle hh;
};

struct peer_table {
    struct peer_limits lim;
    struct peer_slot *slots; /* uthash by key (owned) */
    size_t n;                /* entries in slots, at most lim.max_entries */
    int64_t swept_ms;        /* last sweep of entries no longer needed */
};

struct peer_table *
peer_table_new(const struct peer_limits *lim)
{
    struct peer_table *t = calloc(1, sizeof *t);
    if (t)
        t->lim = *lim;
    return t;
}

void
peer_table_free(struct peer_table *t)
{
    struct peer_slot *s, *tmp;
    if (!t)
        return;
    HASH_ITER(hh, t->slots, s, tmp)
    {
        HASH_DEL(t->slots, s);
        free(s);
    }
    free(t);
}

size_t
peer_table_size(const struct peer_table *t)
{
    return t ? t->n : 0;
}

/* The key of the address text addr; -1 when it is not an address. */
static int
slot_key(const char *addr, unsigned char key[PEER_KEY_LEN])
{
    int family;
    unsigned char bytes[16];

    if (addr == NULL || parse_addr(addr, &family, bytes) < 0)
        return -1;
    memset(key, 0, PEER_KEY_LEN);
    key[0] = family == AF_INET6 ? 6 : 4;
    memcpy(key + 1, bytes, family == AF_INET6 ? 8 : 4);
    return 0;
}

/* Brings s's bucket up to now_ms; a full one stays full. */
static void
refill(const struct peer_table *t, struct peer_slot *s, int64_t now_ms)
{
    int64_t cap = (int64_t)t->lim.burst * 1000;
    if (now_ms > s->at_ms && s->milli < cap) {
        int64_t gained = (now_ms - s->at_ms) * t->lim.rate;
        s->milli = gained >= cap - s->milli ? cap : s->milli + gained;
    }
    s->at_ms = now_ms;
}

/* Whether s says nothing a new entry would not: no connection, bucket full. */
static bool
idle(const struct peer_table *t, struct peer_slot *s, int64_t now_ms)
{
    if (s->conns)
        return false;
    if (t->lim.rate <= 0)
        return true;
    refill(t, s, now_ms);
    return s->milli >= (int64_t)t->lim.burst * 1000;
}

static void
drop(struct peer_table *t, struct peer_slot *s)
{
    HASH_DEL(t->slots, s);
    free(s);
    t->n--;
}

/* Frees every idle entry. Called when the table is full (at most once a
 * second, so a flood of new addresses does not walk it each time) and every
 * PEER_SWEEP_MS, so memory follows the clients that are really there. */
static void
sweep(struct peer_table *t, int64_t now_ms)
{
    struct peer_slot *s, *tmp;
    t->swept_ms = now_ms;
    HASH_ITER(hh, t->slots, s, tmp)
    {
        if (idle(t, s, now_ms))
            drop(t, s);
    }
}

/* The entry of key, created (bucket full) when there is none and room for
 * it. NULL with *full set when the table has no room. */
static struct peer_slot *
find_or_add(struct peer_table *t, const unsigned char key[PEER_KEY_LEN], int64_t now_ms, bool *full)
{
    struct peer_slot *s;

    HASH_FIND(hh, t->slots, key, PEER_KEY_LEN, s);
    if (s)
        return s;
    if (now_ms - t->swept_ms >= PEER_SWEEP_MS ||
        (t->n >= t->lim.max_entries && now_ms - t->swept_ms >= 1000))
        sweep(t, now_ms);
    if (t->n >= t->lim.max_entries) {
        *full = true;
        return NULL;
    }
    s = calloc(1, sizeof *s);
    if (!s) {
        *full = true; /* out of memory: as untracked as a full table */
        return NULL;
    }
    memcpy(s->key, key, PEER_KEY_LEN);
    s->milli = (int64_t)t->lim.burst * 1000;
    s->at_ms = now_ms;
    s->logged_ms = INT64_MIN / 2;
    HASH_ADD(hh, t->slots, key, PEER_KEY_LEN, s);
    t->n++;
    return s;
}

enum peer_verdict
peer_admit(struct peer_table *t, const char *addr, int64_t now_ms, int *retry_s, bool *log)
{
    unsigned char key[PEER_KEY_LEN];
    struct peer_slot *s;
    bool full = false;

    *log = false;
    if (slot_key(addr, key) < 0)
        return PEER_ADMIT;
    if (t->lim.rate <= 0) {
        /* Only the connection cap: an address with no entry holds none. */
        HASH_FIND(hh, t->slots, key, PEER_KEY_LEN, s);
    } else {
        s = find_or_add(t, key, now_ms, &full);
        if (!s)
            return PEER_TABLE_FULL;
    }
    if (!s)
        return PEER_ADMIT;
    bool due = now_ms - s->logged_ms >= 1000;
    if (t->lim.max_conns > 0 && s->conns >= (uint32_t)t->lim.max_conns) {
        *log = due;
        if (due)
            s->logged_ms = now_ms;
        return PEER_TOO_MANY;
    }
    if (t->lim.rate > 0) {
        refill(t, s, now_ms);
        if (s->milli < 1000) {
            int64_t wait_ms = (1000 - s->milli + t->lim.rate - 1) / t->lim.rate;
            *retry_s = (int)((wait_ms + 999) / 1000);
            *log = due;
            if (due)
                s->logged_ms = now_ms;
            return PEER_TOO_FAST;
        }
        s->milli -= 1000;
    }
    return PEER_ADMIT;
}

struct peer_slot *
peer_hold(struct peer_table *t, const char *addr, int64_t now_ms, bool *full)
{
    unsigned char key[PEER_KEY_LEN];

    *full = false;
    if (t->lim.max_conns <= 0 || slot_key(addr, key) < 0)
        return NULL;
    struct peer_slot *s = find_or_add(t, key, now_ms, full);
    if (s)
        s->conns++;
    return s;
}

void
peer_release(struct peer_table *t, struct peer_slot *s, int64_t now_ms)
{
    if (!s)
        return;
    if (s->conns)
        s->conns--;
    if (idle(t, s, now_ms))
        drop(t, s);
}
