/*
 * provider.c - what the provider constructors share.
 */
#include "provider.h"

#include <string.h>
#include <strings.h>
#include <curl/curl.h>

int
url_has_scheme(const char *url, const char *const *schemes)
{
    if (!url)
        return 0;
    CURLU *u = curl_url();
    if (!u)
        return 0;
    char *scheme = NULL, *host = NULL;
    int ok = curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
             curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
             curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host && *host;
    int match = 0;
    for (size_t i = 0; ok && schemes[i]; i++)
        if (!strcasecmp(scheme, schemes[i]))
            match = 1;
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return match;
}

int
url_is_http(const char *url)
{
    static const char *const http[] = {"http", "https", NULL};
    return url_has_scheme(url, http);
}
