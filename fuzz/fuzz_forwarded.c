/*
 * fuzz_forwarded.c - who a client behind a proxy says it is: the
 * X-Forwarded-For header (any client can send one; it is believed only
 * from a trusted proxy) read by peer_forwarded(), and the list of trusted
 * proxies (HUB_TRUSTED_PROXIES, the operator's text) read by
 * peer_nets_parse().
 *
 * Input: the list up to the first '\n', then the header value (both C
 * strings: read up to their first NUL). A list that does not parse leaves
 * no trusted proxy, as if it were empty.
 *
 * Checks: the list parses to at most PEER_MAX_NETS entries with sane
 * families and prefixes, or fails with a reason; peer_forwarded() gives
 * what the rule of peer.h, walked again here from the right of the header,
 * gives, and its address is NUL-terminated within PEER_ADDR_LEN, reads back
 * with inet_pton() and is written the way inet_ntop() writes it (no text
 * of the header as sent); peer_in_nets() agrees with the walk.
 */
#include <arpa/inet.h>
#include <sys/socket.h>

#include "fuzz.h"
#include "peer.h"

/* Reads the trimmed hop s[0..len) into family and bytes; 0 or -1. */
static int
hop_parse(const char *s, size_t len, int *family, unsigned char bytes[16])
{
    char hop[64];
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    while (len && (*s == ' ' || *s == '\t'))
        s++, len--;
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (len == 0 || len >= sizeof hop)
        return -1;
    memcpy(hop, s, len);
    hop[len] = '\0';
    if (inet_pton(AF_INET, hop, bytes) == 1) {
        *family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, hop, bytes) != 1)
        return -1;
    *family = AF_INET6;
    if (memcmp(bytes, mapped, sizeof mapped) == 0) {
        *family = AF_INET;
        memmove(bytes, bytes + 12, 4);
    }
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    struct peer_net nets[PEER_MAX_NETS];
    char *list = fuzz_line(&in, NULL);
    char *xff = fuzz_rest(&in, NULL);
    const char *why = NULL;
    char out[PEER_ADDR_LEN + 1];
    size_t n_nets = 0;

    int n = peer_nets_parse(list, nets, PEER_MAX_NETS, &why);
    FUZZ_CHECK(n >= -1 && n <= PEER_MAX_NETS);
    if (n < 0) {
        FUZZ_CHECK(why != NULL && why[0] != '\0');
    } else {
        n_nets = (size_t)n;
        for (size_t i = 0; i < n_nets; i++) {
            FUZZ_CHECK(nets[i].family == AF_INET || nets[i].family == AF_INET6);
            FUZZ_CHECK(nets[i].prefix <= (nets[i].family == AF_INET ? 32u : 128u));
        }
        /* A shorter array takes as many entries or says there are too many. */
        if (n > 0) {
            struct peer_net few[PEER_MAX_NETS];
            const char *why2 = NULL;
            FUZZ_CHECK(peer_nets_parse(list, few, (size_t)n - 1, &why2) == -1 && why2 != NULL);
        }
    }

    /* The walk of peer.h: from the right, past trusted hops, at most PEER_MAX_HOPS. */
    int expect = -1, family = 0;
    unsigned char bytes[16];
    size_t end = strlen(xff);
    for (int hops = 0; xff[0] != '\0' && hops < PEER_MAX_HOPS; hops++) {
        size_t start = end;
        while (start > 0 && xff[start - 1] != ',')
            start--;
        if (hop_parse(xff + start, end - start, &family, bytes) < 0)
            break;
        char text[PEER_ADDR_LEN];
        FUZZ_CHECK(inet_ntop(family, bytes, text, sizeof text) != NULL);
        if (!peer_in_nets(text, nets, n_nets) || start == 0) {
            expect = 0;
            break;
        }
        end = start - 1;
    }

    memset(out, 'x', sizeof out);
    int r = peer_forwarded(xff, nets, n_nets, out);
    FUZZ_CHECK(r == expect);
    FUZZ_CHECK(out[PEER_ADDR_LEN] == 'x'); /* nothing written past the array */
    if (r == 0) {
        unsigned char back[16], again[16];
        char text[PEER_ADDR_LEN];
        FUZZ_CHECK(memchr(out, '\0', PEER_ADDR_LEN) != NULL);
        FUZZ_CHECK(strlen(out) < PEER_ADDR_LEN);
        int fam = inet_pton(AF_INET, out, back) == 1    ? AF_INET
                  : inet_pton(AF_INET6, out, back) == 1 ? AF_INET6
                                                        : 0;
        FUZZ_CHECK(fam == family);
        FUZZ_CHECK(memcmp(back, bytes, fam == AF_INET ? 4 : 16) == 0);
        FUZZ_CHECK(inet_ntop(fam, back, text, sizeof text) != NULL && strcmp(text, out) == 0);
        FUZZ_CHECK(inet_pton(fam, text, again) == 1);
    }
    free(xff);
    free(list);
    return 0;
}
