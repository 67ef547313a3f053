/*
 * version.c - the hub's version and its libraries' (see version.h).
 */
#include "version.h"

#include "hub_version.h"

#include <curl/curl.h>
#include <ev.h>
#include <libpq-fe.h>
#include <libwebsockets.h>
#include <openssl/crypto.h>
#include <string.h>

const char *
version_string(void)
{
    return HUB_VERSION;
}

void
version_print(FILE *f)
{
    int pq = PQlibVersion();                     /* 150003 for 15.3; 90624 for 9.6.24 */
    const char *lws = lws_get_library_version(); /* "4.1.6-" when built without a git hash */
    size_t lws_len = strlen(lws);
    if (lws_len && lws[lws_len - 1] == '-')
        lws_len--;
    fprintf(f, "armonia-hub %s\n", HUB_VERSION);
    fprintf(f, "libwebsockets %.*s\n", (int)lws_len, lws);
    if (pq >= 100000)
        fprintf(f, "libpq %d.%d\n", pq / 10000, pq % 10000);
    else
        fprintf(f, "libpq %d.%d.%d\n", pq / 10000, pq / 100 % 100, pq % 100);
    fprintf(f, "%s\n", OpenSSL_version(OPENSSL_VERSION));
    fprintf(f, "libcurl %s\n", curl_version_info(CURLVERSION_NOW)->version);
    fprintf(f, "libev %d.%d\n", ev_version_major(), ev_version_minor());
}
