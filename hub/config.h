/*
 * config.h - the hub's settings: environment variables (names compatible
 * with the Armonía backend's .env), each overridable by a --flag.
 *
 * Every limit the hub enforces is here, with its default, so operators can
 * find them in one place (and in `armonia-hub --help`).
 */
#ifndef HUB_CONFIG_H
#define HUB_CONFIG_H

#include <stddef.h>
#include <stdint.h>

struct auth_names;
struct peer_net;

struct hub_config {
    char *database_url; /* DATABASE_URL, required */
    char *jwt_secret;   /* JWT_SECRET_KEY, required */
    size_t jwt_secret_len;
    int port;                 /* PORT, default 3001 */
    char *bind;               /* HUB_BIND, default 0.0.0.0 */
    int internal_port;        /* HUB_INTERNAL_PORT: /healthz and /metrics apart; 0 = on PORT */
    char *internal_bind;      /* HUB_INTERNAL_BIND, default 127.0.0.1 */
    int workers;              /* HUB_WORKERS: worker processes on the port, default 1 */
    int log_level;            /* HUB_LOG_LEVEL, default info */
    int log_format;           /* HUB_LOG_FORMAT: enum log_format, default text */
    size_t max_frame_bytes;   /* HUB_MAX_FRAME_BYTES: inbound frame limit, default 64 KiB */
    size_t max_queue_bytes;   /* HUB_MAX_QUEUE_BYTES: outbound queue per connection, 1 MiB */
    int auth_timeout_ms;      /* HUB_AUTH_TIMEOUT_MS: first-frame auth deadline, 10 s */
    int rate_limit;           /* HUB_RATE_LIMIT: inbound frames/s per connection, 50 */
    int rate_burst;           /* HUB_RATE_BURST: bucket size for the above, 100 */
    int outbox_batch;         /* HUB_OUTBOX_BATCH: outbox rows read per query, 500 */
    int outbox_quiet_jobs;    /* HUB_OUTBOX_QUIET_JOBS: fan-outs waiting that make the
                                 listener stop taking notifications, 64 (0: never) */
    int outbox_poll_ms;       /* HUB_OUTBOX_POLL_MS: outbox read interval meanwhile, 5 */
    int outbox_safety_ms;     /* HUB_OUTBOX_SAFETY_MS: longest time without an outbox read
                                 (and longest retry delay of a failed one), 1 s */
    int db_retry_max_ms;      /* HUB_DB_RETRY_MAX_MS: cap of reconnect backoff, 5 s */
    int tenant_cache_ms;      /* HUB_TENANT_CACHE_MS: how long a tenant lookup is kept, 60 s */
    int max_rooms;            /* HUB_MAX_ROOMS_PER_CONN: rooms one connection may hold, 64 */
    int retention_s;          /* HUB_RETENTION_S: how long the outbox keeps events, 24 h */
    int delivery_retention_s; /* HUB_DELIVERY_RETENTION_S: settled delivery rows, 30 d; 0: forever
                               */
    int purge_interval_ms;    /* HUB_PURGE_INTERVAL_MS: how often expired events are deleted */
    int tcp_keepalive_s;      /* HUB_TCP_KEEPALIVE_S: SO_KEEPALIVE idle time, 0 = off */
    int slow_consumer_ms;     /* HUB_SLOW_CONSUMER_MS: unwritten this long -> 4008 */
    int shutdown_timeout_ms;  /* HUB_SHUTDOWN_TIMEOUT_MS: longest graceful stop, 10 s */
    int close_timeout_ms;     /* HUB_CLOSE_TIMEOUT_MS: a closing connection is gone by then, 5 s */
    int ack_lookups_max;      /* HUB_ACK_LOOKUPS_MAX: acks checked in the database at once, 256 */
    int ack_lookup_rate;      /* HUB_ACK_LOOKUP_RATE: such checks per second per connection, 20 */
    int sio_ping_interval_ms; /* HUB_SIO_PING_INTERVAL_MS: Engine.IO ping period, 25 s */
    int sio_ping_timeout_ms;  /* HUB_SIO_PING_TIMEOUT_MS: wait for its pong, 20 s */

    /* Fallback channels (README "Configuration"; docs/fallback.md); NULL when not set. */
    char *firebase_key;      /* FIREBASE_SERVICE_ACCOUNT_KEY (JSON text) */
    char *firebase_key_file; /* FIREBASE_SERVICE_ACCOUNT_FILE (path) */
    char *fcm_base_url;      /* HUB_FCM_BASE_URL */
    char *twilio_sid;        /* TWILIO_ACCOUNT_SID */
    char *twilio_token;      /* TWILIO_AUTH_TOKEN */
    char *twilio_from;       /* TWILIO_PHONE_NUMBER */
    char *twilio_base_url;   /* HUB_TWILIO_BASE_URL */
    char *smtp_url;          /* HUB_SMTP_URL */
    char *smtp_from;         /* HUB_SMTP_FROM */
    char *smtp_user;         /* HUB_SMTP_USER */
    char *smtp_password;     /* HUB_SMTP_PASSWORD */
    int smtp_plain_auth;     /* HUB_SMTP_ALLOW_PLAINTEXT_AUTH: login in clear, loopback only */
    int provider_inflight;   /* HUB_PROVIDER_MAX_INFLIGHT: requests in flight per provider */
    int provider_timeout_ms; /* HUB_PROVIDER_TIMEOUT_MS: one provider request at most */
    int max_attempts;        /* HUB_FALLBACK_MAX_ATTEMPTS: provider requests per delivery */
    int retry_base_ms;       /* HUB_RETRY_BASE_MS: first retry delay (exponential, jittered) */
    int retry_cap_ms;        /* HUB_RETRY_CAP_MS: longest retry delay */
    int breaker_threshold;   /* HUB_BREAKER_THRESHOLD: failures in a row that open it */
    int breaker_cooldown_ms; /* HUB_BREAKER_COOLDOWN_MS: how long an open breaker skips */
    int fallback_tick_ms;    /* HUB_FALLBACK_TICK_MS: how often due fallbacks are looked for */
    char *console_dir;       /* HUB_CONSOLE_DIR: clients/js, served at /console and /js */
    int lease_ms;            /* HUB_DELIVERY_LEASE_MS: a claimed delivery is this hub's for */

    /* Token policy, and the client addresses logged with authentication failures. */
    int jwt_max_ttl_s;     /* HUB_JWT_MAX_TTL_S: longest exp - iat (iat then required), 0 = off */
    char *jwt_audience;    /* HUB_JWT_AUDIENCE: aud must include it; NULL: aud refused (owned) */
    char *jwt_issuer;      /* HUB_JWT_ISSUER: iss must equal it; NULL: not checked (owned) */
    int session_max_age_s; /* HUB_SESSION_MAX_AGE_S: a connection's life across refreshes */
    char *trusted_proxies; /* HUB_TRUSTED_PROXIES: proxies whose forwarded address is logged */
    struct peer_net *proxies; /* the above, parsed (owned); n_proxies entries */
    size_t n_proxies;

    /* Where a token's identity is (auth.h's struct auth_names): claim names, extra roles. */
    char *jwt_claim_sub;    /* HUB_JWT_CLAIM_SUB: claim of the user id, default sub (owned) */
    char *jwt_claim_tenant; /* HUB_JWT_CLAIM_TENANT: claim of the tenant, default tenant (owned) */
    char *jwt_claim_role;   /* HUB_JWT_CLAIM_ROLE: claim of the role, default role (owned) */
    char *jwt_claim_units;  /* HUB_JWT_CLAIM_UNITS: claim of the units, default units (owned) */
    char *jwt_role_map;     /* HUB_JWT_ROLE_MAP: VALUE=ROLE,...; NULL: built-in roles (owned) */
    struct auth_names *claim_names; /* the five above, checked and parsed (owned) */

    /* Exposure to the internet: browsers' origins and per-address caps (ws.c, peer.c). */
    char *allowed_origins; /* HUB_ALLOWED_ORIGINS: comma-separated; NULL: any origin */
    char **origins;        /* the above, split (owned, each entry too); n_origins entries */
    size_t n_origins;
    int max_conns_per_ip;    /* HUB_MAX_CONNS_PER_IP: open connections per address, 256 */
    int handshakes_per_ip_s; /* HUB_MAX_HANDSHAKES_PER_IP_S: upgrades/s per address, 20 */
    int handshake_burst;     /* HUB_HANDSHAKE_BURST_PER_IP: upgrades at once per address, 40 */
    int max_tracked_ips;     /* HUB_MAX_TRACKED_IPS: addresses counted at once, 65536 */
    char *exempt_addrs;      /* HUB_EXEMPT_ADDRESSES: never capped, 127.0.0.0/8 and ::1 */
    struct peer_net *exempt; /* the above, parsed (owned); n_exempt entries */
    size_t n_exempt;

    /* TLS in the hub (tls.c): both set or neither; NULL: plain ws:// and http://. */
    char *tls_cert_file; /* HUB_TLS_CERT_FILE: PEM certificate, then its chain (owned) */
    char *tls_key_file;  /* HUB_TLS_KEY_FILE: PEM private key of that certificate (owned) */
};

/* Longest variable or flag name the suggestions compare (longer: none). */
#define CONFIG_NAME_MAX 127
/* What --check-config shows in place of a secret. */
#define CONFIG_MASK "****"

/*
 * Fills cfg from the environment, then from argv. On bad or missing
 * configuration prints one line naming the variable to stderr and returns
 * 2; on --help, --version and --print-env-example prints what they ask
 * for (whatever the settings) and returns 1; on --check-config, once the
 * settings are valid, prints them with secrets masked and returns 1;
 * returns 0 when the hub may start. Before that, a HUB_* variable that is
 * no setting is a warning on stderr naming the nearest setting. The caller
 * releases cfg with config_free().
 */
int config_load(struct hub_config *cfg, int argc, char **argv);

/*
 * The edit distance between a and b: insertions, deletions, substitutions
 * and swaps of two neighbouring characters, one each (SIZE_MAX when either
 * is longer than CONFIG_NAME_MAX).
 */
size_t config_distance(const char *a, const char *b);

/*
 * The setting nearest to the unknown name, for "did you mean": among the
 * variables (flags 0) or the flags without their dashes (flags 1; name may
 * start with "--"). A "HUB_" prefix counts for nothing, so HUB_PORT finds
 * PORT. NULL when even the nearest takes more than a couple of edits (a
 * quarter of the name's length when that is more): another word, not a
 * misspelling.
 */
const char *config_suggest(const char *name, int flags);

void config_free(struct hub_config *cfg);

#endif
