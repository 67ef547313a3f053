/*
 * peer.h - who is on the other end of a connection, for the log.
 *
 * The hub logs the address of every client whose authentication fails, so
 * tools such as fail2ban can act on it. Behind a reverse proxy the socket's
 * peer is the proxy: when it is one of HUB_TRUSTED_PROXIES, the address the
 * proxy forwarded (X-Forwarded-For) is logged beside it.
 * Forwarded headers are client-controlled text: only well-formed addresses
 * come out of here, never the header as sent.
 */
#ifndef HUB_PEER_H
#define HUB_PEER_H

#include <stdbool.h>
#include <stddef.h>

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

#endif
