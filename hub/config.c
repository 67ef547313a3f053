/*
 * config.c - reads the hub's settings from the environment and --flags,
 * and says what it read: --check-config (secrets masked), the example
 * environment file and the man page's ENVIRONMENT section, all from the
 * one table below so they cannot fall out of step with it.
 */
#include "config.h"
#include "auth.h"
#include "log.h"
#include "peer.h"
#include "tls.h"
#include "version.h"
#include "workers.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>

enum opt_kind { OPT_STR, OPT_INT, OPT_SIZE, OPT_LEVEL, OPT_FORMAT };

/* How --check-config shows a value that may hold a secret (secrets[]). */
enum opt_mask {
    MASK_NONE = 0, /* shown as it is */
    MASK_ALL,      /* a secret: never shown */
    MASK_URL,      /* a URL: the password of its user part hidden */
    MASK_CONNINFO, /* a libpq connection string or URI: its password hidden */
};

/* One setting: its variable, its flag, where it goes and its bounds. */
struct opt {
    const char *env;
    const char *flag;
    enum opt_kind kind;
    size_t offset;
    long long min, max;
    const char *def;
    const char *help;
};

#define OFF(f) offsetof(struct hub_config, f)

static const struct opt opts[] = {
    {"DATABASE_URL", "database-url", OPT_STR, OFF(database_url), 0, 0, NULL,
     "libpq connection string or URI of the database holding schema hub (required)"},
    {"JWT_SECRET_KEY", "jwt-secret-key", OPT_STR, OFF(jwt_secret), 0, 0, NULL,
     "HS256 secret shared with the backend that issues tokens (required; prefer the variable)"},
    {"PORT", "port", OPT_INT, OFF(port), 1, 65535, "3001", "TCP port for WebSocket and HTTP"},
    {"HUB_BIND", "bind", OPT_STR, OFF(bind), 0, 0, "0.0.0.0", "address to bind"},
    {"HUB_INTERNAL_PORT", "internal-port", OPT_INT, OFF(internal_port), 0, 65535, "0",
     "port of /healthz and /metrics, plain HTTP on HUB_INTERNAL_BIND, which the public port then "
     "answers with 404; 0: both on PORT"},
    {"HUB_INTERNAL_BIND", "internal-bind", OPT_STR, OFF(internal_bind), 0, 0, "127.0.0.1",
     "address of HUB_INTERNAL_PORT (loopback: only this machine's scraper reaches it)"},
    {"HUB_WORKERS", "workers", OPT_INT, OFF(workers), 1, WORKERS_MAX, "1",
     "worker processes sharing the port (SO_REUSEPORT), each with its own loop and database "
     "sessions, under one supervisor that restarts them; 1: one process, no supervisor"},
    {"HUB_LOG_LEVEL", "log-level", OPT_LEVEL, OFF(log_level), 0, 3, "info",
     "error, warn, info or debug"},
    {"HUB_LOG_FORMAT", "log-format", OPT_FORMAT, OFF(log_format), 0, 1, "text",
     "text (one line per entry, for a terminal or journald) or json (one JSON object per line: "
     "time, level, module, message, worker, fields)"},
    {"HUB_MAX_FRAME_BYTES", "max-frame-bytes", OPT_SIZE, OFF(max_frame_bytes), 256, 16777216,
     "65536", "largest inbound WebSocket message; larger ones close the connection with 1009"},
    {"HUB_MAX_QUEUE_BYTES", "max-queue-bytes", OPT_SIZE, OFF(max_queue_bytes), 4096, 1073741824,
     "1048576",
     "outbound bytes queued per connection; past it a reading client catches up from the outbox"},
    {"HUB_SLOW_CONSUMER_MS", "slow-consumer-ms", OPT_INT, OFF(slow_consumer_ms), 100, 3600000,
     "30000",
     "a connection whose frames wait unwritten this long is closed with 4008 (one that reads "
     "but falls behind a burst catches up from the outbox instead)"},
    {"HUB_TCP_KEEPALIVE_S", "tcp-keepalive-s", OPT_INT, OFF(tcp_keepalive_s), 0, 7200, "60",
     "idle seconds before the kernel probes a silent client (5 probes, 10 s apart; a vanished "
     "phone is dropped about 110 s later); 0 turns probing off"},
    {"HUB_AUTH_TIMEOUT_MS", "auth-timeout-ms", OPT_INT, OFF(auth_timeout_ms), 100, 600000, "10000",
     "time a connection has to authenticate"},
    {"HUB_JWT_MAX_TTL_S", "jwt-max-ttl-s", OPT_INT, OFF(jwt_max_ttl_s), 0, 400 * 86400, "0",
     "longest token lifetime (exp - iat) accepted; when set, iat is required and may not lie in "
     "the future (0: no bound beyond the built-in one: exp at most 400 days ahead)"},
    {"HUB_JWT_AUDIENCE", "jwt-audience", OPT_STR, OFF(jwt_audience), 0, 0, NULL,
     "a token's aud (string or array) must include this (unset: tokens naming any aud are "
     "refused)"},
    {"HUB_JWT_ISSUER", "jwt-issuer", OPT_STR, OFF(jwt_issuer), 0, 0, NULL,
     "a token's iss must equal this (unset: iss is not checked)"},
    {"HUB_JWT_CLAIM_SUB", "jwt-claim-sub", OPT_STR, OFF(jwt_claim_sub), 0, 0, "sub",
     "the token claim holding the user id (the Armonía backend's tokens: userId)"},
    {"HUB_JWT_CLAIM_TENANT", "jwt-claim-tenant", OPT_STR, OFF(jwt_claim_tenant), 0, 0, "tenant",
     "the token claim holding the tenant schema (under the default, schemaName is read when "
     "tenant is absent)"},
    {"HUB_JWT_CLAIM_ROLE", "jwt-claim-role", OPT_STR, OFF(jwt_claim_role), 0, 0, "role",
     "the token claim holding the role"},
    {"HUB_JWT_CLAIM_UNITS", "jwt-claim-units", OPT_STR, OFF(jwt_claim_units), 0, 0, "units",
     "the token claim holding the unit ids (optional in tokens)"},
    {"HUB_JWT_ROLE_MAP", "jwt-role-map", OPT_STR, OFF(jwt_role_map), 0, 0, NULL,
     "extra role values, VALUE=ROLE comma-separated with ROLE resident, guard or admin, e.g. "
     "COMPLEX_ADMIN=admin,SECURITY=guard (case-insensitive; unset: only resident, guard and "
     "admin; any other value is refused)"},
    {"HUB_SESSION_MAX_AGE_S", "session-max-age-s", OPT_INT, OFF(session_max_age_s), 0, 400 * 86400,
     "86400",
     "a connection is closed with 4001 this long after its first authentication, whatever "
     "in-band refreshes extend (0: only token expiry ends it)"},
    {"HUB_TRUSTED_PROXIES", "trusted-proxies", OPT_STR, OFF(trusted_proxies), 0, 0, NULL,
     "reverse proxies (addresses or CIDR blocks, comma-separated) whose X-Forwarded-For is "
     "logged with authentication failures (unset: only the peer address)"},
    {"HUB_ALLOWED_ORIGINS", "allowed-origins", OPT_STR, OFF(allowed_origins), 0, 0, NULL,
     "origins (scheme://host[:port], comma-separated) a browser's upgrade may come from; an "
     "upgrade without Origin (native apps) is always let in (unset: any origin)"},
    {"HUB_MAX_CONNS_PER_IP", "max-conns-per-ip", OPT_INT, OFF(max_conns_per_ip), 0, 1000000, "256",
     "open WebSocket connections per client address (IPv6: per /64); more get HTTP 429 "
     "(0: no cap)"},
    {"HUB_MAX_HANDSHAKES_PER_IP_S", "max-handshakes-per-ip-s", OPT_INT, OFF(handshakes_per_ip_s), 0,
     1000000, "20",
     "WebSocket upgrades per second per client address (sustained); more get HTTP 429 with "
     "Retry-After (0: no cap)"},
    {"HUB_HANDSHAKE_BURST_PER_IP", "handshake-burst-per-ip", OPT_INT, OFF(handshake_burst), 1,
     1000000, "40", "WebSocket upgrades one client address may make at once"},
    {"HUB_MAX_TRACKED_IPS", "max-tracked-ips", OPT_INT, OFF(max_tracked_ips), 16, 10000000, "65536",
     "client addresses the per-address caps track at once (about 100 bytes each); past it new "
     "addresses are let in uncounted (armonia_ip_table_full_total)"},
    {"HUB_EXEMPT_ADDRESSES", "exempt-addresses", OPT_STR, OFF(exempt_addrs), 0, 0,
     "127.0.0.0/8,::1",
     "addresses or CIDR blocks the per-address caps never apply to (HUB_TRUSTED_PROXIES are "
     "exempt too; behind them the forwarded client is counted)"},
    {"HUB_RATE_LIMIT", "rate-limit", OPT_INT, OFF(rate_limit), 1, 1000000, "50",
     "inbound frames per second per connection (sustained)"},
    {"HUB_RATE_BURST", "rate-burst", OPT_INT, OFF(rate_burst), 1, 1000000, "100",
     "inbound frames a connection may send at once; beyond rate and burst it is closed with 4029"},
    {"HUB_OUTBOX_BATCH", "outbox-batch", OPT_INT, OFF(outbox_batch), 1, 100000, "500",
     "outbox rows read per query"},
    {"HUB_OUTBOX_QUIET_JOBS", "outbox-quiet-jobs", OPT_INT, OFF(outbox_quiet_jobs), 0, 100000, "64",
     "broadcasts waiting to be written at which the hub stops taking a notification per "
     "event and reads the outbox every HUB_OUTBOX_POLL_MS instead, until it has caught up (0: "
     "never)"},
    {"HUB_OUTBOX_POLL_MS", "outbox-poll-ms", OPT_INT, OFF(outbox_poll_ms), 1, 1000, "5",
     "outbox read interval while notifications are off (HUB_OUTBOX_QUIET_JOBS)"},
    {"HUB_OUTBOX_SAFETY_MS", "outbox-safety-ms", OPT_INT, OFF(outbox_safety_ms), 10, 600000, "1000",
     "longest time the connected listener goes without reading the outbox, whatever happens to "
     "notifications; also the longest wait before a failed read is retried"},
    {"HUB_DB_RETRY_MAX_MS", "db-retry-max-ms", OPT_INT, OFF(db_retry_max_ms), 100, 600000, "5000",
     "longest wait between database reconnection attempts"},
    {"HUB_TENANT_CACHE_MS", "tenant-cache-ms", OPT_INT, OFF(tenant_cache_ms), 0, 86400000, "60000",
     "how long the answer 'this tenant exists' is kept"},
    {"HUB_MAX_ROOMS_PER_CONN", "max-rooms-per-conn", OPT_INT, OFF(max_rooms), 4, 100000, "64",
     "rooms one connection may be in, automatic ones included"},
    {"HUB_RETENTION_S", "retention-s", OPT_INT, OFF(retention_s), 1, 31536000, "86400",
     "how long events stay in the outbox for resuming clients"},
    {"HUB_PURGE_INTERVAL_MS", "purge-interval-ms", OPT_INT, OFF(purge_interval_ms), 100, 86400000,
     "60000", "how often events past retention are deleted"},
    {"HUB_DELIVERY_RETENTION_S", "delivery-retention-s", OPT_INT, OFF(delivery_retention_s), 0,
     315360000, "2592000",
     "how long settled rows of the delivery log (hub.deliveries) are kept; never less than the "
     "longest policy's max_age_ms; 0 keeps them forever"},
    {"HUB_SHUTDOWN_TIMEOUT_MS", "shutdown-timeout-ms", OPT_INT, OFF(shutdown_timeout_ms), 0, 600000,
     "10000", "on SIGTERM/SIGINT, longest wait for clients to be closed with 1001"},
    {"HUB_CLOSE_TIMEOUT_MS", "close-timeout-ms", OPT_INT, OFF(close_timeout_ms), 500, 600000,
     "5000",
     "a connection the hub closes (4008, 4001, 4029, 1009, 1001, ...) is dropped this long after "
     "the decision if its close has not gone out by then (the client does not read)"},
    {"HUB_ACK_LOOKUPS_MAX", "ack-lookups-max", OPT_INT, OFF(ack_lookups_max), 1, 1000000, "256",
     "acks for events not sent on their connection being checked in the database at once, "
     "hub-wide; more get rate_limited"},
    {"HUB_ACK_LOOKUP_RATE", "ack-lookup-rate", OPT_INT, OFF(ack_lookup_rate), 1, 1000000, "20",
     "such checks one connection may start per second (bursts of 32); more get rate_limited"},
    {"HUB_SIO_PING_INTERVAL_MS", "sio-ping-interval-ms", OPT_INT, OFF(sio_ping_interval_ms), 1000,
     600000, "25000",
     "Socket.IO connections (/socket.io/): how often the hub sends an Engine.IO ping"},
    {"HUB_SIO_PING_TIMEOUT_MS", "sio-ping-timeout-ms", OPT_INT, OFF(sio_ping_timeout_ms), 1000,
     600000, "20000",
     "Socket.IO connections: a ping not answered this long closes the connection (4008)"},
    {"FIREBASE_SERVICE_ACCOUNT_KEY", "firebase-service-account-key", OPT_STR, OFF(firebase_key), 0,
     0, NULL, "service-account JSON for FCM push (unset, with no file: push disabled)"},
    {"FIREBASE_SERVICE_ACCOUNT_FILE", "firebase-service-account-file", OPT_STR,
     OFF(firebase_key_file), 0, 0, NULL, "path of the service-account JSON, instead of the text"},
    {"HUB_FCM_BASE_URL", "fcm-base-url", OPT_STR, OFF(fcm_base_url), 0, 0,
     "https://fcm.googleapis.com", "base of the FCM HTTP v1 API"},
    {"TWILIO_ACCOUNT_SID", "twilio-account-sid", OPT_STR, OFF(twilio_sid), 0, 0, NULL,
     "Twilio account (unset: SMS disabled)"},
    {"TWILIO_AUTH_TOKEN", "twilio-auth-token", OPT_STR, OFF(twilio_token), 0, 0, NULL,
     "Twilio auth token"},
    {"TWILIO_PHONE_NUMBER", "twilio-phone-number", OPT_STR, OFF(twilio_from), 0, 0, NULL,
     "sender number of SMS"},
    {"HUB_TWILIO_BASE_URL", "twilio-base-url", OPT_STR, OFF(twilio_base_url), 0, 0,
     "https://api.twilio.com", "base of the Twilio REST API"},
    {"HUB_SMTP_URL", "smtp-url", OPT_STR, OFF(smtp_url), 0, 0, NULL,
     "smtp:// (STARTTLS when offered) or smtps:// relay (unset: e-mail disabled)"},
    {"HUB_SMTP_FROM", "smtp-from", OPT_STR, OFF(smtp_from), 0, 0, NULL, "sender address of e-mail"},
    {"HUB_SMTP_USER", "smtp-user", OPT_STR, OFF(smtp_user), 0, 0, NULL, "SMTP login"},
    {"HUB_SMTP_PASSWORD", "smtp-password", OPT_STR, OFF(smtp_password), 0, 0, NULL,
     "SMTP password"},
    {"HUB_SMTP_ALLOW_PLAINTEXT_AUTH", "smtp-allow-plaintext-auth", OPT_INT, OFF(smtp_plain_auth), 0,
     1, "0",
     "1: send HUB_SMTP_USER's login without TLS when the relay offers none; refused unless "
     "HUB_SMTP_URL's host is loopback (0: a login always requires TLS)"},
    {"HUB_PROVIDER_MAX_INFLIGHT", "provider-max-inflight", OPT_INT, OFF(provider_inflight), 1,
     10000, "64", "requests in flight at once per provider"},
    {"HUB_PROVIDER_TIMEOUT_MS", "provider-timeout-ms", OPT_INT, OFF(provider_timeout_ms), 100,
     600000, "10000", "longest a provider request may take"},
    {"HUB_FALLBACK_MAX_ATTEMPTS", "fallback-max-attempts", OPT_INT, OFF(max_attempts), 1, 100, "5",
     "provider requests per delivery before it is failed (and the next channel tried)"},
    {"HUB_RETRY_BASE_MS", "retry-base-ms", OPT_INT, OFF(retry_base_ms), 1, 3600000, "1000",
     "first retry delay of a provider request (exponential, full jitter)"},
    {"HUB_RETRY_CAP_MS", "retry-cap-ms", OPT_INT, OFF(retry_cap_ms), 1, 86400000, "60000",
     "longest retry delay (a Retry-After from the provider may ask for more)"},
    {"HUB_BREAKER_THRESHOLD", "breaker-threshold", OPT_INT, OFF(breaker_threshold), 1, 10000, "5",
     "failures in a row after which a provider is skipped for the cool-down"},
    {"HUB_BREAKER_COOLDOWN_MS", "breaker-cooldown-ms", OPT_INT, OFF(breaker_cooldown_ms), 10,
     86400000, "30000", "how long a failing provider is skipped before one probe"},
    {"HUB_FALLBACK_TICK_MS", "fallback-tick-ms", OPT_INT, OFF(fallback_tick_ms), 10, 60000, "1000",
     "how often due fallbacks and retries are looked for"},
    {"HUB_CONSOLE_DIR", "console-dir", OPT_STR, OFF(console_dir), 0, 0, NULL,
     "the clients/js folder: its console/ is served at /console/, its src/ at /js/ (unset: not "
     "served)"},
    {"HUB_TLS_CERT_FILE", "tls-cert-file", OPT_STR, OFF(tls_cert_file), 0, 0, NULL,
     "PEM certificate (then its intermediates): serve wss:// and https:// on PORT, TLS 1.2 at "
     "least, reloaded on SIGHUP (with HUB_TLS_KEY_FILE; unset: plain ws:// and http://)"},
    {"HUB_TLS_KEY_FILE", "tls-key-file", OPT_STR, OFF(tls_key_file), 0, 0, NULL,
     "PEM private key of HUB_TLS_CERT_FILE's certificate"},
    {"HUB_DELIVERY_LEASE_MS", "delivery-lease-ms", OPT_INT, OFF(lease_ms), 1000, 3600000, "60000",
     "how long a claimed delivery belongs to this hub before another may take it"},
};

#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

/* getopt_long()'s values: a setting's is OPT_VAL_BASE + its index, far
 * from every character getopt returns itself ('?' for an unknown option,
 * ':' for a missing argument), however many settings there are. */
#define OPT_VAL_BASE 0x10000
#define OPT_VAL_CHECK (OPT_VAL_BASE - 1)

/* The settings that may hold a secret, and how --check-config hides it;
 * every other one is shown as it is. */
static const struct {
    const char *env;
    enum opt_mask mask;
} secrets[] = {
    {"DATABASE_URL", MASK_CONNINFO},
    {"JWT_SECRET_KEY", MASK_ALL},
    {"FIREBASE_SERVICE_ACCOUNT_KEY", MASK_ALL},
    {"HUB_FCM_BASE_URL", MASK_URL},
    {"TWILIO_AUTH_TOKEN", MASK_ALL},
    {"HUB_TWILIO_BASE_URL", MASK_URL},
    {"HUB_SMTP_URL", MASK_URL},
    {"HUB_SMTP_PASSWORD", MASK_ALL},
};

/* How o's value is shown (MASK_NONE unless it is in secrets[]). */
static enum opt_mask
mask_of(const struct opt *o)
{
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
        if (!strcmp(secrets[i].env, o->env))
            return secrets[i].mask;
    return MASK_NONE;
}

/* The options that ask the binary about itself instead of starting it. */
static const struct {
    const char *flag;
    const char *help;
} info_opts[] = {
    {"check-config", "check the settings, print them (secrets masked) and exit: 0 when valid, "
                     "2 (with the reason) when not"},
    {"print-env-example", "print an example environment file (every setting, commented, with "
                          "its default) and exit"},
    {"version", "print the version of the hub and of its libraries and exit"},
    {"help", "print this and exit"},
};

#define N_INFO_OPTS (sizeof(info_opts) / sizeof(info_opts[0]))

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: armonia-hub [--flag=value ...]\n"
            "       armonia-hub --check-config | --print-env-example | --version | --help\n"
            "       armonia-hub migrate [--status] [--database-url URL]   (see migrate --help)\n\n"
            "Every setting is read from its environment variable; a flag overrides it.\n\n");
    for (size_t i = 0; i < N_OPTS; i++)
        fprintf(f, "  --%-22s %-24s %s%s%s%s\n", opts[i].flag, opts[i].env, opts[i].help,
                opts[i].def ? " [default " : "", opts[i].def ? opts[i].def : "",
                opts[i].def ? "]" : "");
    for (size_t i = 0; i < N_INFO_OPTS; i++)
        fprintf(f, "  --%-22s %-24s %s\n", info_opts[i].flag, "", info_opts[i].help);
}

size_t
config_distance(const char *a, const char *b)
{
    /* Three rows of the optimal string alignment table: i-2, i-1 and i. */
    size_t la = strlen(a), lb = strlen(b);
    if (la > CONFIG_NAME_MAX || lb > CONFIG_NAME_MAX)
        return SIZE_MAX;
    size_t rows[3][CONFIG_NAME_MAX + 1];
    size_t *two = rows[0], *one = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= lb; j++)
        one[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] != b[j - 1];
            size_t d = one[j - 1] + cost;
            if (one[j] + 1 < d)
                d = one[j] + 1;
            if (cur[j - 1] + 1 < d)
                d = cur[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                two[j - 2] + 1 < d)
                d = two[j - 2] + 1; /* two neighbours swapped */
            cur[j] = d;
        }
        size_t *t = two;
        two = one;
        one = cur;
        cur = t;
    }
    return one[lb];
}

/* name without a leading "HUB_" (or "--"), so HUB_PORT finds PORT. */
static const char *
bare(const char *name)
{
    if (!strncmp(name, "HUB_", 4))
        return name + 4;
    if (!strncmp(name, "--", 2))
        return name + 2;
    return name;
}

const char *
config_suggest(const char *name, int flags)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    for (size_t i = 0; i < N_OPTS + N_INFO_OPTS; i++) {
        const char *cand;
        if (i < N_OPTS)
            cand = flags ? opts[i].flag : opts[i].env;
        else if (flags)
            cand = info_opts[i - N_OPTS].flag;
        else
            break;
        size_t d = config_distance(flags ? bare(name) : name, cand);
        size_t d2 = config_distance(bare(name), bare(cand));
        if (d2 < d)
            d = d2;
        if (d < best_d) {
            best_d = d;
            best = cand;
        }
    }
    /* A misspelling, not another word: a couple of edits, more in long names. */
    size_t len = strlen(bare(name));
    size_t limit = len / 4 > 2 ? len / 4 : 2;
    return best_d <= limit ? best : NULL;
}

/* Whether name is the variable of a setting. */
static int
known_variable(const char *name, size_t len)
{
    for (size_t i = 0; i < N_OPTS; i++)
        if (strlen(opts[i].env) == len && !memcmp(opts[i].env, name, len))
            return 1;
    return 0;
}

/*
 * Warns about every HUB_* variable in the environment that is not a
 * setting (a misspelt one would otherwise be ignored without a word),
 * naming the nearest setting when one is close.
 */
static void
warn_unknown_variables(void)
{
    extern char **environ;
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, "HUB_", 4))
            continue;
        size_t len = strcspn(*e, "=");
        if (known_variable(*e, len))
            continue;
        char name[CONFIG_NAME_MAX + 1];
        snprintf(name, sizeof(name), "%.*s", (int)len, *e);
        const char *near = config_suggest(name, 0);
        if (near)
            fprintf(stderr, "armonia-hub: warning: unknown setting %s (did you mean %s?)\n", name,
                    near);
        else
            fprintf(stderr, "armonia-hub: warning: unknown setting %s (see --help)\n", name);
    }
}

/* Writes value to f as libpq's connection strings quote it, when it must be. */
static void
print_conninfo_value(FILE *f, const char *value)
{
    if (*value && !strpbrk(value, " \t\n\r'\\")) {
        fputs(value, f);
        return;
    }
    fputc('\'', f);
    for (const char *p = value; *p; p++) {
        if (*p == '\'' || *p == '\\')
            fputc('\\', f);
        fputc(*p, f);
    }
    fputc('\'', f);
}

/* Prints a connection string or URI as "key=value ..." the way libpq reads
 * it, the password (if any) masked; the text as it is if libpq cannot. */
static void
print_conninfo(FILE *f, const char *url)
{
    PQconninfoOption *ci = PQconninfoParse(url, NULL);
    if (!ci) {
        fputs("(unreadable)", f);
        return;
    }
    int first = 1;
    for (PQconninfoOption *o = ci; o->keyword; o++) {
        if (!o->val)
            continue;
        fprintf(f, "%s%s=", first ? "" : " ", o->keyword);
        if (!strcmp(o->keyword, "password"))
            fputs(CONFIG_MASK, f);
        else
            print_conninfo_value(f, o->val);
        first = 0;
    }
    PQconninfoFree(ci);
}

/* Prints a URL with the password of its user part (scheme://user:PASSWORD@host) masked. */
static void
print_url(FILE *f, const char *url)
{
    const char *auth = strstr(url, "://");
    if (!auth) {
        fputs(url, f);
        return;
    }
    auth += 3;
    size_t auth_len = strcspn(auth, "/?#");
    const char *at = NULL;
    for (const char *p = auth; p < auth + auth_len; p++)
        if (*p == '@')
            at = p;
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (!colon) {
        fputs(url, f);
        return;
    }
    fprintf(f, "%.*s%s%s", (int)(colon + 1 - url), url, CONFIG_MASK, at);
}

/* The effective value of o in cfg, on one line, its secrets masked. */
static void
print_value(FILE *f, const struct hub_config *cfg, const struct opt *o)
{
    const char *field = (const char *)cfg + o->offset;
    switch (o->kind) {
    case OPT_STR: {
        const char *v = *(char *const *)(const void *)field;
        enum opt_mask mask = mask_of(o);
        if (mask == MASK_ALL)
            fputs(CONFIG_MASK, f);
        else if (mask == MASK_CONNINFO)
            print_conninfo(f, v);
        else if (mask == MASK_URL)
            print_url(f, v);
        else
            fputs(v, f);
        break;
    }
    case OPT_INT:
        fprintf(f, "%d", *(const int *)(const void *)field);
        break;
    case OPT_SIZE:
        fprintf(f, "%zu", *(const size_t *)(const void *)field);
        break;
    case OPT_LEVEL:
        fputs(log_level_name(*(const int *)(const void *)field), f);
        break;
    case OPT_FORMAT:
        fputs(*(const int *)(const void *)field == LOG_FORMAT_JSON ? "json" : "text", f);
        break;
    }
}

/* --check-config: every setting's effective value, as NAME=value lines. */
static void
print_effective(FILE *f, const struct hub_config *cfg)
{
    fprintf(f,
            "# armonia-hub %s: the configuration is valid. Effective settings, secrets "
            "masked:\n",
            version_string());
    for (size_t i = 0; i < N_OPTS; i++) {
        const char *field = (const char *)cfg + opts[i].offset;
        if (opts[i].kind == OPT_STR && !*(char *const *)(const void *)field) {
            fprintf(f, "# %s is not set\n", opts[i].env);
            continue;
        }
        fprintf(f, "%s=", opts[i].env);
        print_value(f, cfg, &opts[i]);
        fputc('\n', f);
    }
}

/* Writes text as "# " comment lines of at most 78 columns. */
static void
print_comment(FILE *f, const char *text)
{
    const char *p = text;
    while (*p) {
        size_t len = strlen(p);
        if (len > 76) {
            len = 76;
            while (len > 0 && p[len] != ' ')
                len--;
            if (len == 0)
                len = strcspn(p, " ");
        }
        fprintf(f, "# %.*s\n", (int)len, p);
        p += len;
        p += strspn(p, " ");
    }
}

/* --print-env-example: the file the systemd unit reads (EnvironmentFile=). */
static void
print_env_example(FILE *f)
{
    print_comment(f, "/etc/armonia-hub/env - the settings of armonia-hub(8), read by its "
                     "systemd unit. Written by `armonia-hub --print-env-example`: every "
                     "setting with its help and its default; uncomment a line to change it. "
                     "DATABASE_URL and JWT_SECRET_KEY are required. The file holds secrets: "
                     "keep it readable by root only (chmod 600); systemd reads it before "
                     "the hub starts.");
    for (size_t i = 0; i < N_OPTS; i++) {
        fputc('\n', f);
        print_comment(f, opts[i].help);
        fprintf(f, "#%s=%s\n", opts[i].env, opts[i].def ? opts[i].def : "");
    }
}

/* Writes text for roff: backslashes escaped, a leading dot or quote made
 * literal, dashes of flags as minus signs when minus is set. */
static void
print_roff(FILE *f, const char *text, int minus)
{
    if (*text == '.' || *text == '\'')
        fputs("\\&", f);
    for (const char *p = text; *p; p++) {
        if (*p == '\\')
            fputs("\\e", f);
        else if (*p == '-' && minus)
            fputs("\\-", f);
        else
            fputc(*p, f);
    }
}

/* The ENVIRONMENT section of armonia-hub(8) (CMake puts it into the page). */
static void
print_man_environment(FILE *f)
{
    for (size_t i = 0; i < N_OPTS; i++) {
        fputs(".TP\n.B ", f);
        print_roff(f, opts[i].env, 0);
        fputs("\n", f);
        print_roff(f, opts[i].help, 0);
        fputs(".\nFlag: \\fB\\-\\-", f);
        print_roff(f, opts[i].flag, 1);
        fputs("\\fR", f);
        if (opts[i].def) {
            fputs("; default: \\fB", f);
            print_roff(f, opts[i].def, 0);
            fputs("\\fR", f);
        }
        fputs(".\n", f);
    }
}

/*
 * The options that answer and exit whatever the rest of the configuration
 * says: returns 1 when one was found (and answered), 0 otherwise.
 */
static int
answer_info_option(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--"))
            break;
        if (!strcmp(argv[i], "--help")) {
            usage(stdout);
            return 1;
        }
        if (!strcmp(argv[i], "--version")) {
            version_print(stdout);
            return 1;
        }
        if (!strcmp(argv[i], "--print-env-example")) {
            print_env_example(stdout);
            return 1;
        }
        if (!strcmp(argv[i], "--print-man-environment")) { /* for the build, not listed */
            print_man_environment(stdout);
            return 1;
        }
    }
    return 0;
}

/* The line for an option getopt refused, naming the nearest known one. */
static void
report_bad_option(const char *arg)
{
    char name[CONFIG_NAME_MAX + 1];
    snprintf(name, sizeof(name), "%.*s", (int)strcspn(arg, "="), arg);
    const char *near = strncmp(name, "--", 2) ? NULL : config_suggest(name, 1);
    if (near && strcmp(near, name + 2))
        fprintf(stderr, "armonia-hub: unknown option '%s' (did you mean --%s?)\n", arg, near);
    else
        fprintf(stderr, "armonia-hub: unknown or incomplete option '%s' (see --help)\n", arg);
}

/* Stores one textual value into cfg; prints the error line and returns -1 if bad. */
static int
opt_set(struct hub_config *cfg, const struct opt *o, const char *value, int from_flag)
{
    char *field = (char *)cfg + o->offset;
    const char *name = o->env;
    char label[64];
    if (from_flag) {
        snprintf(label, sizeof(label), "--%s", o->flag);
        name = label;
    }
    switch (o->kind) {
    case OPT_STR: {
        if (!*value) {
            fprintf(stderr, "armonia-hub: %s: must not be empty\n", name);
            return -1;
        }
        char **dst = (char **)(void *)field;
        free(*dst);
        *dst = strdup(value);
        if (!*dst) {
            fprintf(stderr, "armonia-hub: out of memory\n");
            return -1;
        }
        return 0;
    }
    case OPT_LEVEL: {
        int l = log_level_parse(value);
        if (l < 0) {
            fprintf(stderr, "armonia-hub: %s: expected error, warn, info or debug, got '%s'\n",
                    name, value);
            return -1;
        }
        *(int *)(void *)field = l;
        return 0;
    }
    case OPT_FORMAT: {
        int f = log_format_parse(value);
        if (f < 0) {
            fprintf(stderr, "armonia-hub: %s: expected text or json, got '%s'\n", name, value);
            return -1;
        }
        *(int *)(void *)field = f;
        return 0;
    }
    case OPT_INT:
    case OPT_SIZE: {
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end || v < o->min || v > o->max) {
            fprintf(stderr, "armonia-hub: %s: expected an integer from %lld to %lld, got '%s'\n",
                    name, o->min, o->max, value);
            return -1;
        }
        if (o->kind == OPT_INT)
            *(int *)(void *)field = (int)v;
        else
            *(size_t *)(void *)field = (size_t)v;
        return 0;
    }
    }
    return -1;
}

/*
 * Whether s (len bytes) is an origin as browsers send it (RFC 6454):
 * scheme "://" host, then at most ":port"; no path, no trailing slash.
 */
static int
origin_ok(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && (isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.'))
        i++;
    if (i == 0 || !isalpha((unsigned char)s[0]) || len - i < 4 || memcmp(s + i, "://", 3))
        return 0;
    i += 3;
    size_t host = i;
    if (i < len && s[i] == '[') { /* an IPv6 literal */
        while (i < len && s[i] != ']')
            i++;
        if (i == len)
            return 0;
        i++;
    }
    while (i < len && s[i] != ':' && s[i] != '/' && s[i] != '?' && s[i] != '#' && s[i] != '@')
        i++;
    if (i == host)
        return 0;
    if (i < len && s[i] == ':') {
        size_t digits = ++i;
        while (i < len && isdigit((unsigned char)s[i]))
            i++;
        if (i == digits || i - digits > 5)
            return 0;
    }
    return i == len;
}

/* Splits HUB_ALLOWED_ORIGINS into cfg->origins; prints the error and
 * returns -1 on an entry that is not an origin. */
static int
parse_origins(struct hub_config *cfg)
{
    const char *p = cfg->allowed_origins;
    size_t max = 1;
    for (const char *q = p; *q; q++)
        max += *q == ',';
    cfg->origins = calloc(max, sizeof(*cfg->origins));
    if (!cfg->origins) {
        fprintf(stderr, "armonia-hub: out of memory\n");
        return -1;
    }
    while (*p) {
        p += strspn(p, ", \t");
        size_t len = strcspn(p, ", \t");
        if (len == 0)
            break;
        if (!origin_ok(p, len)) {
            fprintf(stderr,
                    "armonia-hub: HUB_ALLOWED_ORIGINS: expected origins such as "
                    "https://app.example.com or http://localhost:8100 (scheme://host[:port], no "
                    "path), got '%.*s'\n",
                    (int)len, p);
            return -1;
        }
        cfg->origins[cfg->n_origins] = strndup(p, len);
        if (!cfg->origins[cfg->n_origins]) {
            fprintf(stderr, "armonia-hub: out of memory\n");
            return -1;
        }
        cfg->n_origins++;
        p += len;
    }
    return 0;
}

/* Parses the address list of the variable name (NULL: none) into *nets;
 * prints the error and returns -1 when it is not one. */
static int
parse_nets(const char *name, const char *list, struct peer_net **nets, size_t *n)
{
    const char *why = "out of memory";
    if (!list)
        return 0;
    *nets = calloc(PEER_MAX_NETS, sizeof(**nets));
    int got = *nets ? peer_nets_parse(list, *nets, PEER_MAX_NETS, &why) : -1;
    if (got < 0) {
        fprintf(stderr, "armonia-hub: %s: %s, got '%s'\n", name, why, list);
        return -1;
    }
    *n = (size_t)got;
    return 0;
}

/*
 * Checks the claim names and the role map and builds cfg->claim_names;
 * prints the error line naming the setting and returns -1 when one is bad.
 */
static int
load_claim_names(struct hub_config *cfg)
{
    const struct {
        const char *env;
        const char *value;
    } names[] = {
        {"HUB_JWT_CLAIM_SUB", cfg->jwt_claim_sub},
        {"HUB_JWT_CLAIM_TENANT", cfg->jwt_claim_tenant},
        {"HUB_JWT_CLAIM_ROLE", cfg->jwt_claim_role},
        {"HUB_JWT_CLAIM_UNITS", cfg->jwt_claim_units},
    };
    /* Claims the token checks read themselves: naming one would read it twice. */
    static const char *const reserved[] = {"exp", "nbf", "iat", "aud", "iss"};
    const size_t n = sizeof(names) / sizeof(names[0]);

    for (size_t i = 0; i < n; i++) {
        if (auth_claim_name_check(names[i].value)) {
            fprintf(stderr,
                    "armonia-hub: %s: expected a claim name of 1..%d characters of "
                    "[A-Za-z0-9_.:/-], got '%s'\n",
                    names[i].env, AUTH_CLAIM_NAME_MAX, names[i].value);
            return -1;
        }
        for (size_t r = 0; r < sizeof(reserved) / sizeof(reserved[0]); r++) {
            if (!strcmp(names[i].value, reserved[r])) {
                fprintf(stderr, "armonia-hub: %s: '%s' is a claim the hub reads for itself\n",
                        names[i].env, names[i].value);
                return -1;
            }
        }
        for (size_t j = 0; j < i; j++) {
            if (!strcmp(names[i].value, names[j].value)) {
                fprintf(stderr, "armonia-hub: %s: '%s' is already the claim of %s\n", names[i].env,
                        names[i].value, names[j].env);
                return -1;
            }
        }
    }
    struct auth_role_alias aliases[AUTH_MAX_ROLE_ALIASES];
    size_t n_aliases = 0;
    char why[256];
    if (auth_role_map_parse(cfg->jwt_role_map, aliases, AUTH_MAX_ROLE_ALIASES, &n_aliases, why,
                            sizeof(why))) {
        fprintf(stderr, "armonia-hub: HUB_JWT_ROLE_MAP: %s\n", why);
        return -1;
    }
    cfg->claim_names = malloc(sizeof(*cfg->claim_names));
    if (!cfg->claim_names) {
        fprintf(stderr, "armonia-hub: out of memory\n");
        return -1;
    }
    auth_names_init(cfg->claim_names, cfg->jwt_claim_sub, cfg->jwt_claim_tenant,
                    cfg->jwt_claim_role, cfg->jwt_claim_units, aliases, n_aliases);
    return 0;
}

int
config_load(struct hub_config *cfg, int argc, char **argv)
{
    memset(cfg, 0, sizeof(*cfg));
    if (answer_info_option(argc, argv))
        return 1;
    for (size_t i = 0; i < N_OPTS; i++) {
        const char *v = getenv(opts[i].env);
        if ((!v || !*v) && opts[i].def)
            v = opts[i].def;
        if (v && *v && opt_set(cfg, &opts[i], v, 0))
            return 2;
    }

    struct option longopts[N_OPTS + 2];
    for (size_t i = 0; i < N_OPTS; i++)
        longopts[i] = (struct option){opts[i].flag, required_argument, NULL, OPT_VAL_BASE + (int)i};
    longopts[N_OPTS] = (struct option){"check-config", no_argument, NULL, OPT_VAL_CHECK};
    longopts[N_OPTS + 1] = (struct option){0, 0, 0, 0};
    optind = 1;
    opterr = 0;
    int c, check = 0;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == OPT_VAL_CHECK) {
            check = 1;
            continue;
        }
        if (c < OPT_VAL_BASE || (size_t)(c - OPT_VAL_BASE) >= N_OPTS) {
            report_bad_option(argv[optind - 1]);
            return 2;
        }
        if (opt_set(cfg, &opts[c - OPT_VAL_BASE], optarg, 1))
            return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "armonia-hub: unexpected argument '%s' (see --help)\n", argv[optind]);
        return 2;
    }
    if (!cfg->database_url) {
        fprintf(stderr, "armonia-hub: DATABASE_URL: required (libpq connection string)\n");
        return 2;
    }
    if (!cfg->jwt_secret) {
        fprintf(stderr, "armonia-hub: JWT_SECRET_KEY: required (HS256 secret)\n");
        return 2;
    }
    char *err = NULL;
    PQconninfoOption *ci = PQconninfoParse(cfg->database_url, &err);
    if (!ci) {
        if (err)
            err[strcspn(err, "\r\n")] = '\0';
        fprintf(stderr, "armonia-hub: DATABASE_URL: not a valid connection string or URI (%s)\n",
                err ? err : "out of memory");
        PQfreemem(err);
        return 2;
    }
    PQconninfoFree(ci);
    cfg->jwt_secret_len = strlen(cfg->jwt_secret);
    if (load_claim_names(cfg))
        return 2;
    if (parse_nets("HUB_TRUSTED_PROXIES", cfg->trusted_proxies, &cfg->proxies, &cfg->n_proxies) ||
        parse_nets("HUB_EXEMPT_ADDRESSES", cfg->exempt_addrs, &cfg->exempt, &cfg->n_exempt))
        return 2;
    if (cfg->allowed_origins && parse_origins(cfg))
        return 2;
    if (!cfg->tls_cert_file != !cfg->tls_key_file) {
        fprintf(stderr, "armonia-hub: %s: required with %s (set both for TLS, or neither)\n",
                cfg->tls_cert_file ? "HUB_TLS_KEY_FILE" : "HUB_TLS_CERT_FILE",
                cfg->tls_cert_file ? "HUB_TLS_CERT_FILE" : "HUB_TLS_KEY_FILE");
        return 2;
    }
    if (cfg->internal_port && cfg->internal_port == cfg->port) {
        fprintf(stderr,
                "armonia-hub: HUB_INTERNAL_PORT: must differ from PORT (%d), or be 0 to "
                "serve /healthz and /metrics on PORT\n",
                cfg->port);
        return 2;
    }
    char why[512];
    if (cfg->tls_cert_file && tls_check(cfg->tls_cert_file, cfg->tls_key_file, why, sizeof(why))) {
        fprintf(stderr, "armonia-hub: %s\n", why);
        return 2;
    }
    warn_unknown_variables();
    if (check) {
        print_effective(stdout, cfg);
        return 1;
    }
    return 0;
}

void
config_free(struct hub_config *cfg)
{
    char **strs[] = {
        &cfg->database_url,      &cfg->jwt_secret,      &cfg->bind,        &cfg->firebase_key,
        &cfg->firebase_key_file, &cfg->fcm_base_url,    &cfg->twilio_sid,  &cfg->twilio_token,
        &cfg->twilio_from,       &cfg->twilio_base_url, &cfg->smtp_url,    &cfg->smtp_from,
        &cfg->smtp_user,         &cfg->smtp_password,   &cfg->console_dir, &cfg->internal_bind};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        free(*strs[i]);
    free(cfg->jwt_audience);
    free(cfg->jwt_issuer);
    free(cfg->jwt_claim_sub);
    free(cfg->jwt_claim_tenant);
    free(cfg->jwt_claim_role);
    free(cfg->jwt_claim_units);
    free(cfg->jwt_role_map);
    free(cfg->claim_names);
    free(cfg->trusted_proxies);
    free(cfg->proxies);
    free(cfg->allowed_origins);
    for (size_t i = 0; i < cfg->n_origins; i++)
        free(cfg->origins[i]);
    free(cfg->origins);
    free(cfg->exempt_addrs);
    free(cfg->exempt);
    free(cfg->tls_cert_file);
    free(cfg->tls_key_file);
    memset(cfg, 0, sizeof(*cfg));
}
