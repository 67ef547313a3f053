/*
 * peer.h - who is on the other end of a connection, for the log.
 *
 * The hub logs the address of every client whose authentication fails, so
 * tools such as fail2ban can act on it. Behind a reverse proxy the socket's
 * peer is the proxy: when it is one of HUB_TRUSTED_PROXIES, the address the
 * proxy forwarded (X-Forwarded-For) is logged beside it.
 * Forwarded headers are client-controlled text: only well-formed addresses
 * come out of here, never the header as sent.
 *
 * The same address is what the per-address caps count (struct peer_table):
 * open WebSocket connections (HUB_MAX_CONNS_PER_IP) and upgrades per second
 * (HUB_MAX_HANDSHAKES_PER_IP_S, a token bucket), in a table whose size is
 * bounded by HUB_MAX_TRACKED_IPS. IPv6 clients are counted per /64, the
 * block one subscriber gets: an address each costs an attacker nothing.
 */
#ifndef HUB_PEER_H
#define HUB_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest text of an address this module writes, NUL included (IPv6). */
#define PEER_ADDR_LEN 46
/* Most entries HUB_TRUSTED_PROXIES may list. */
#define PEER_MAX_NETS 64
/* Longest X-Forwarded-For read; a longer one is not looked at. */
#define PEER_FWD_HDR_MAX 1024
/* Most X-Forwarded-For hops looked at, from the right. */
#define PEER_MAX_HOPS 16

/* One address block: family (AF_INET or AF_INET6), bytes, prefix length. */
struct peer_net {
    int family;
    unsigned char addr[16];
    unsigned prefix;
};

/*
 * Parses a list of addresses and CIDR blocks separated by commas or spaces
 * ("10.0.0.0/8, 192.168.1.5, ::1, fd00::/8"). IPv4-mapped IPv6 peers match
 * IPv4 blocks. Returns the number of blocks stored in out (at most max), or
 * -1 with *why naming the first bad entry's problem.
 */
int peer_nets_parse(const char *list, struct peer_net *out, size_t max, const char **why);

/* Whether the address text addr falls in one of nets. */
bool peer_in_nets(const char *addr, const struct peer_net *nets, size_t n);

/*
 * The client address a trusted proxy forwarded: the rightmost hop of xff
 * (X-Forwarded-For, may be NULL) that is not itself a trusted proxy, or the
 * leftmost when every hop is one. Writes it in canonical form to out
 * (PEER_ADDR_LEN bytes) and returns 0, or returns -1 when there is no
 * well-formed address to give (a malformed hop stops the walk: what lies
 * left of it cannot be trusted).
 */
int peer_forwarded(const char *xff, const struct peer_net *nets, size_t n, char out[PEER_ADDR_LEN]);

/* The per-address caps; a limit of 0 turns that cap off. */
struct peer_limits {
    int max_conns;      /* open connections per address */
    int rate;           /* upgrades per second per address (sustained) */
    int burst;          /* upgrades per address at once (the bucket's size) */
    size_t max_entries; /* addresses tracked at once */
};

/* Entries no longer needed are looked for at least this often (ms). */
#define PEER_SWEEP_MS 60000

struct peer_table;
struct peer_slot;

/* What peer_admit() decided about one upgrade. */
enum peer_verdict {
    PEER_ADMIT,      /* under both caps: go on (a handshake was counted) */
    PEER_TOO_MANY,   /* the address holds max_conns connections already */
    PEER_TOO_FAST,   /* the address's handshake bucket is empty */
    PEER_TABLE_FULL, /* max_entries addresses are tracked: admitted uncounted */
};

/* A table for lim (copied), or NULL when out of memory. */
struct peer_table *peer_table_new(const struct peer_limits *lim);

/* Frees t and every entry; slots held are invalid afterwards. */
void peer_table_free(struct peer_table *t);

/* Addresses tracked now. */
size_t peer_table_size(const struct peer_table *t);

/*
 * Decides on an upgrade from addr (address text; the caller has left out
 * exempt addresses) at now_ms. On PEER_TOO_FAST *retry_s is the seconds
 * until a handshake would be admitted. On a refusal *log says whether the
 * caller should log it (at most one line a second per address, so a flood
 * does not flood the log). An address that is not well formed is admitted
 * uncounted.
 */
enum peer_verdict peer_admit(struct peer_table *t, const char *addr, int64_t now_ms, int *retry_s,
                             bool *log);

/*
 * Counts an established connection from addr. Returns its slot, to be
 * given back with peer_release() when the connection ends, or NULL when it
 * is not counted (the connection cap is off, addr is not an address, or
 * the table is full: then *full is set).
 */
struct peer_slot *peer_hold(struct peer_table *t, const char *addr, int64_t now_ms, bool *full);

/* Gives back a slot from peer_hold() (NULL is ignored). */
void peer_release(struct peer_table *t, struct peer_slot *s, int64_t now_ms);

#endif
