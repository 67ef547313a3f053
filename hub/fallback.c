/*
 * fallback.c - the hub's side of fallback delivery (see fallback.h).
 *
 * Work arrives three ways: the tick (every HUB_FALLBACK_TICK_MS: plan due
 * jobs, claim due retries), NOTIFY hub_deliveries (another hub or a result
 * created pending rows; heard on the hub's listener connection, which hands
 * it to fallback_notify()), and the completion of a send (room for one more).
 * At most one plan query and one claim query per channel are in flight, and
 * a provider never has more than HUB_PROVIDER_MAX_INFLIGHT requests.
 */
#include "fallback.h"
#include "address.h"
#include "backoff.h"
#include "breaker.h"
#include "classify.h"
#include "db.h"
#include "http.h"
#include "hub.h"
#include "log.h"
#include "provider.h"
#include "sqlbatch.h"
#include "template.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uthash.h>

/* Due jobs planned per query. */
#define FALLBACK_PLAN_BATCH 100
/* Rows claimed per query for a channel with no provider (they are skipped). */
#define FALLBACK_SKIP_BATCH 200

struct kind_entry {
    char *kind;
    UT_hash_handle hh;
};

struct fallback {
    struct hub *hub;
    struct db *db;
    struct http_engine *http;
    struct provider *prov[CHANNEL_COUNT]; /* NULL: channel not configured */
    int planning, plan_again;
    int claiming[CHANNEL_COUNT], claim_again[CHANNEL_COUNT];
    struct kind_entry *sent_kinds; /* kinds whose policy has fallback channels */
    lws_sorted_usec_list_t tick;
    char hub_id[96];
    int closing;              /* fallback_free() has begun */
    struct sqlbatch *results; /* owned; outcomes waiting to be written, oldest first */
    lws_sorted_usec_list_t results_sul;
};

/* One delivery being sent; owned by the fallback until its result is stored. */
struct job {
    struct fallback *fb;
    enum channel ch;
    char *event_id, *user_id, *tenant, *address;
    int attempts;
    int64_t started_us; /* when the provider request started (hub_now_us()) */
};

static void claim(struct fallback *fb, enum channel ch);

static void
job_free(struct job *j)
{
    free(j->event_id);
    free(j->user_id);
    free(j->tenant);
    free(j->address);
    free(j);
}

/* Outcomes written per statement at most. */
#define FALLBACK_RESULT_BATCH 500
/* How long an outcome may wait for others to share its statement. */
#define FALLBACK_RESULT_DELAY_MS 5
/* The arguments of hub.delivery_results(): event, user, channel, outcome,
 * detail, retry delay and address (which of the user's rows of the channel:
 * a push row per device token). */
#define FALLBACK_RESULT_COLUMNS 7

static void flush_results(struct fallback *fb);

static void
on_results_stored(struct db *db, const PGresult *res, void *ud)
{
    struct fallback *fb = ud;
    if (!res) {
        sqlbatch_retry(fb->results); /* kept: written again when the database is back */
        return;
    }
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        log_err("fallback", "recording %zu delivery results failed: %s",
                sqlbatch_inflight(fb->results), PQresultErrorMessage(res));
    /* Written (or refused for good): drop them. */
    sqlbatch_done(fb->results);
    /* A failed, skipped or deferred delivery may have queued the next channel. */
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
        for (int i = 0; i < PQntuples(res); i++) {
            enum channel next;
            if (channel_parse(PQgetvalue(res, i, 0), &next) == 0)
                claim(fb, next);
        }
    if (sqlbatch_pending(fb->results))
        flush_results(fb);
}

/* Writes the waiting outcomes (at most one statement in flight). */
static void
flush_results(struct fallback *fb)
{
    if (!db_is_up(fb->db))
        return;
    char *lit[FALLBACK_RESULT_COLUMNS];
    unsigned nulls;
    if (sqlbatch_take(fb->results, lit, &nulls) > 0) {
        const char *params[FALLBACK_RESULT_COLUMNS] = {lit[0], lit[1], lit[2], lit[3],
                                                       lit[4], lit[5], lit[6]};
        if (!db_query(fb->db,
                      "SELECT next_channel FROM hub.delivery_results($1::bigint[], $2::text[], "
                      "$3::text[], $4::text[], $5::text[], $6::int[], $7::text[])",
                      FALLBACK_RESULT_COLUMNS, params, on_results_stored, fb))
            sqlbatch_retry(fb->results);
    }
    for (int k = 0; k < FALLBACK_RESULT_COLUMNS; k++)
        free(lit[k]);
}

static void
on_results_timer(lws_sorted_usec_list_t *sul)
{
    flush_results(lws_container_of(sul, struct fallback, results_sul));
}

/*
 * Queues the outcome of the row (event_id, user, ch, address), address
 * being the one its claim returned: outcome is "sent", "retry", "failed",
 * "skipped" or "deferred" (hub.delivery_settle() says what each does to
 * the row).
 * Outcomes are written in batches; they stay queued while the database is
 * away. If the hub stops first, the row's lease runs out and another
 * attempt (by this or another hub) takes it: nothing is lost, at worst one
 * message is repeated (see docs/fallback.md).
 */
static void
store_result(struct fallback *fb, const char *event_id, const char *user, enum channel ch,
             const char *address, const char *outcome, const char *detail, int retry_ms)
{
    fb->hub->m.fallback[ch][metric_fallback_slot(outcome)]++;
    char retry[16];
    snprintf(retry, sizeof(retry), "%d", retry_ms);
    const char *v[FALLBACK_RESULT_COLUMNS] = {
        event_id, user, channel_name(ch), outcome, detail ? detail : "", retry, address};
    if (sqlbatch_add(fb->results, v) < 0) {
        log_err("fallback", "out of memory recording a result of event %s", event_id);
        return;
    }
    if (sqlbatch_pending(fb->results) >= FALLBACK_RESULT_BATCH)
        flush_results(fb);
    else
        lws_sul_schedule(fb->hub->ctx, 0, &fb->results_sul, on_results_timer,
                         FALLBACK_RESULT_DELAY_MS * 1000);
}

/* Logs the outcome of job j's request to p: the words for text lines, the
 * same as named fields for JSON ones (the address masked). */
static void log_outcome(enum log_level level, const struct provider *p, const struct job *j,
                        const char *masked, const char *outcome, const char *detail,
                        const char *fmt, ...) __attribute__((format(printf, 7, 8)));

static void
log_outcome(enum log_level level, const struct provider *p, const struct job *j, const char *masked,
            const char *outcome, const char *detail, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    struct log_field f[] = {
        LOG_STR("channel", channel_name(j->ch)),
        LOG_STR("provider", p->name),
        LOG_STR("outcome", outcome),
        LOG_STR("event", j->event_id),
        LOG_STR("user", j->user_id),
        LOG_STR("tenant", j->tenant),
        LOG_STR("to", masked),
        LOG_NUM("attempt", j->attempts + 1),
        LOG_STR("detail", detail ? detail : ""),
    };
    log_fields(level, "fallback", f, sizeof(f) / sizeof(f[0]), "%s", message);
}

_Static_assert(CHANNEL_COUNT == METRIC_CHANNELS, "a metric series per channel");

int
fallback_circuit(const struct fallback *fb, int ch)
{
    if (!fb || ch < 0 || ch >= CHANNEL_COUNT || !fb->prov[ch])
        return -1;
    switch (fb->prov[ch]->breaker.state) {
    case BREAKER_OPEN:
        return 1;
    case BREAKER_HALF_OPEN:
        return 2;
    default:
        return 0;
    }
}

/* A provider answered (or failed to) for job j. */
static void
on_sent(void *ud, const struct send_result *r)
{
    struct job *j = ud;
    struct fallback *fb = j->fb;
    struct provider *p = fb->prov[j->ch];
    const struct hub_config *cfg = fb->hub->cfg;
    if (fb->closing) {
        /* Shutting down: the lease runs out and a hub sends it later. */
        p->inflight--;
        job_free(j);
        return;
    }
    int64_t now = hub_now_ms();
    hist_observe(&fb->hub->m.provider_latency[j->ch], hub_now_us() - j->started_us);
    char masked[32];
    log_mask(j->address, masked, sizeof(masked));
    p->inflight--;

    switch (r->outcome) {
    case SEND_OK:
        breaker_success(&p->breaker, now);
        log_outcome(LOG_INFO, p, j, masked, "sent", r->provider_id,
                    "%s to %s (user %s, event %s) sent: %s", p->name, masked, j->user_id,
                    j->event_id, r->provider_id);
        store_result(fb, j->event_id, j->user_id, j->ch, j->address, "sent", r->provider_id, 0);
        break;
    case SEND_PERMANENT:
        breaker_success(&p->breaker, now); /* the provider works; this recipient does not */
        log_outcome(LOG_INFO, p, j, masked, "failed", r->detail,
                    "%s to %s (user %s, event %s) failed for good: %s", p->name, masked, j->user_id,
                    j->event_id, r->detail);
        /* The token is recorded with the row (hub.delivery_results()); the
         * user's other devices get theirs all the same. */
        if (j->ch == CHANNEL_PUSH && !strcmp(r->detail, CLASSIFY_FCM_UNREGISTERED))
            fb->hub->m.unregistered_tokens++;
        store_result(fb, j->event_id, j->user_id, j->ch, j->address, "failed", r->detail, 0);
        break;
    case SEND_CONFIG:
    case SEND_RETRY:
        /* Only transient failures trip the breaker: a configuration alarm
         * (e.g. APNs credentials, iPhones only) must not stop Android pushes. */
        if (r->outcome == SEND_RETRY)
            breaker_failure(&p->breaker, now);
        else
            breaker_release(&p->breaker);
        if (r->outcome == SEND_CONFIG)
            log_err("fallback", "%s rejects our credentials or configuration (%s): check it",
                    p->name, r->detail);
        if (j->attempts + 1 >= cfg->max_attempts) {
            char detail[240];
            snprintf(detail, sizeof(detail), "gave up after %d attempts: %s", j->attempts + 1,
                     r->detail);
            log_outcome(LOG_WARN, p, j, masked, "failed", detail, "%s to %s (event %s): %s",
                        p->name, masked, j->event_id, detail);
            store_result(fb, j->event_id, j->user_id, j->ch, j->address, "failed", detail, 0);
        } else {
            int delay = backoff_delay_ms(j->attempts, cfg->retry_base_ms, cfg->retry_cap_ms,
                                         r->retry_after_ms, (uint32_t)random());
            log_outcome(LOG_INFO, p, j, masked, "retry", r->detail,
                        "%s to %s (event %s): %s; retry in %d ms", p->name, masked, j->event_id,
                        r->detail, delay);
            store_result(fb, j->event_id, j->user_id, j->ch, j->address, "retry", r->detail, delay);
        }
        break;
    }
    enum channel ch = j->ch;
    job_free(j);
    claim(fb, ch);
}

/* Renders and sends one claimed row; records a result when it cannot go. */
static void
dispatch(struct fallback *fb, enum channel ch, const PGresult *res, int i)
{
    const char *event_id = PQgetvalue(res, i, 0);
    const char *user = PQgetvalue(res, i, 1);
    const char *tenant = PQgetvalue(res, i, 3);
    const char *address = PQgetvalue(res, i, 4);
    /* Names the row in its result. A row without an address (never one the
     * plan leaves pending) passes NULL: the database then takes the user's
     * pending row of the channel. */
    const char *row_address = PQgetisnull(res, i, 4) ? NULL : address;
    const char *locale = PQgetisnull(res, i, 5) ? NULL : PQgetvalue(res, i, 5);
    const char *kind = PQgetvalue(res, i, 6);
    const char *priority = PQgetvalue(res, i, 7);
    int attempts = atoi(PQgetvalue(res, i, 9));
    struct provider *p = fb->prov[ch];

    if (!p) {
        store_result(fb, event_id, user, ch, row_address, "skipped", "channel not configured", 0);
        return;
    }
    /* Before the breaker: an unusable address must not take a half-open probe. */
    const char *bad = address_check(ch, address);
    if (bad) {
        log_warn("fallback", "%s to user %s (event %s) skipped: %s", channel_name(ch), user,
                 event_id, bad);
        store_result(fb, event_id, user, ch, row_address, "skipped", bad, 0);
        return;
    }
    int64_t now = hub_now_ms();
    if (!breaker_allow(&p->breaker, now)) {
        if (strcmp(priority, "critical") == 0) {
            /* A critical event must not lose a channel to an outage: the
             * row waits until the circuit half-opens (or, while its probe is
             * in flight, HUB_RETRY_BASE_MS), attempts unchanged, and an
             * ordered policy's next channel goes at once meanwhile. */
            int64_t wait = breaker_retry_in_ms(&p->breaker, now);
            int delay =
                wait > fb->hub->cfg->retry_base_ms ? (int)wait : fb->hub->cfg->retry_base_ms;
            store_result(fb, event_id, user, ch, row_address, "deferred",
                         "provider unavailable (circuit open): waits for it to half-open", delay);
            return;
        }
        store_result(fb, event_id, user, ch, row_address, "skipped",
                     "provider unavailable (circuit open)", 0);
        return;
    }
    json_t *data = json_loads(PQgetvalue(res, i, 8), 0, NULL);
    struct rendered text;
    if (template_render(kind, locale, data, ch, &text)) {
        json_decref(data);
        store_result(fb, event_id, user, ch, row_address, "failed", "cannot render the message", 0);
        return;
    }
    json_decref(data);
    struct job *j = calloc(1, sizeof(*j));
    if (j) {
        j->fb = fb;
        j->ch = ch;
        j->attempts = attempts;
        j->started_us = hub_now_us();
        j->event_id = strdup(event_id);
        j->user_id = strdup(user);
        j->tenant = strdup(tenant);
        j->address = strdup(address);
    }
    struct message m = {
        .to = address,
        .title = text.title,
        .body = text.body,
        .html = text.html,
        .high_priority = strcmp(priority, "normal") != 0,
        .event_id = event_id,
        .user_id = user,
        .kind = kind,
        .tenant = tenant,
    };
    if (!j || !j->event_id || !j->user_id || !j->tenant || !j->address ||
        p->send(p, &m, on_sent, j)) {
        if (j)
            job_free(j);
        breaker_release(&p->breaker);
        store_result(fb, event_id, user, ch, row_address, "retry", "could not start the request",
                     fb->hub->cfg->retry_base_ms);
    } else {
        p->inflight++;
    }
    template_free(&text);
}

struct claim_ctx {
    struct fallback *fb;
    enum channel ch;
    int asked;
};

static void
on_claimed(struct db *db, const PGresult *res, void *ud)
{
    struct claim_ctx *cc = ud;
    struct fallback *fb = cc->fb;
    enum channel ch = cc->ch;
    int asked = cc->asked;
    free(cc);
    fb->claiming[ch] = 0;
    if (!res)
        return;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_err("fallback", "claiming %s deliveries failed: %s", channel_name(ch),
                PQresultErrorMessage(res));
        return;
    }
    int n = PQntuples(res);
    for (int i = 0; i < n; i++)
        dispatch(fb, ch, res, i);
    if (n >= asked || fb->claim_again[ch])
        claim(fb, ch);
}

/* Claims as many due deliveries of ch as its provider has room for. */
static void
claim(struct fallback *fb, enum channel ch)
{
    if (fb->closing || !db_is_up(fb->db))
        return;
    if (fb->claiming[ch]) {
        fb->claim_again[ch] = 1;
        return;
    }
    struct provider *p = fb->prov[ch];
    int room = p ? (int)p->max_inflight - (int)p->inflight : FALLBACK_SKIP_BATCH;
    /* Claim in batches: with sends still in flight, wait until half the room
     * is free rather than paying a claim round trip per completed send. */
    if (room <= 0 || (p && p->inflight && room < (int)(p->max_inflight + 1) / 2))
        return;
    struct claim_ctx *cc = malloc(sizeof(*cc));
    if (!cc)
        return;
    *cc = (struct claim_ctx){fb, ch, room};
    char n[16], lease[16];
    snprintf(n, sizeof(n), "%d", room);
    snprintf(lease, sizeof(lease), "%d", fb->hub->cfg->lease_ms);
    const char *params[4] = {channel_name(ch), n, lease, fb->hub_id};
    fb->claim_again[ch] = 0;
    if (db_query(fb->db,
                 "SELECT event_id, user_id, channel, tenant, address, locale, kind, priority, "
                 "data::text, attempts FROM hub.delivery_claim($1, $2::int, $3::int, $4)",
                 4, params, on_claimed, cc))
        fb->claiming[ch] = 1;
    else
        free(cc);
}

static void
claim_all(struct fallback *fb)
{
    for (int ch = 0; ch < CHANNEL_COUNT; ch++)
        claim(fb, (enum channel)ch);
}

static void plan(struct fallback *fb);

static void
on_planned(struct db *db, const PGresult *res, void *ud)
{
    struct fallback *fb = ud;
    fb->planning = 0;
    if (!res)
        return;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_err("fallback", "planning due fallbacks failed: %s", PQresultErrorMessage(res));
        return;
    }
    int n = PQntuples(res), planned = 0;
    for (int i = 0; i < n; i++)
        planned += atoi(PQgetvalue(res, i, 2));
    if (planned)
        log_debug("fallback", "planned %d deliveries for %d jobs", planned, n);
    if (n >= FALLBACK_PLAN_BATCH || fb->plan_again)
        plan(fb);
    if (planned)
        claim_all(fb);
}

/* Turns due jobs into delivery rows. */
static void
plan(struct fallback *fb)
{
    if (fb->closing || !db_is_up(fb->db))
        return;
    if (fb->planning) {
        fb->plan_again = 1;
        return;
    }
    char n[16];
    snprintf(n, sizeof(n), "%d", FALLBACK_PLAN_BATCH);
    const char *params[1] = {n};
    fb->plan_again = 0;
    if (db_query(fb->db, "SELECT event_id, phase, planned FROM hub.fallback_plan($1::int)", 1,
                 params, on_planned, fb))
        fb->planning = 1;
}

static void
on_tick(lws_sorted_usec_list_t *sul)
{
    struct fallback *fb = lws_container_of(sul, struct fallback, tick);
    plan(fb);
    claim_all(fb);
    lws_sul_schedule(fb->hub->ctx, 0, &fb->tick, on_tick,
                     (lws_usec_t)fb->hub->cfg->fallback_tick_ms * 1000);
}

static void
on_policies(struct db *db, const PGresult *res, void *ud)
{
    struct fallback *fb = ud;
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
        if (res)
            log_err("fallback", "reading hub.policies failed: %s", PQresultErrorMessage(res));
        return;
    }
    struct kind_entry *e, *tmp;
    HASH_ITER(hh, fb->sent_kinds, e, tmp)
    {
        HASH_DEL(fb->sent_kinds, e);
        free(e->kind);
        free(e);
    }
    for (int i = 0; i < PQntuples(res); i++) {
        e = calloc(1, sizeof(*e));
        if (!e || !(e->kind = strdup(PQgetvalue(res, i, 0)))) {
            free(e);
            break;
        }
        HASH_ADD_KEYPTR(hh, fb->sent_kinds, e->kind, strlen(e->kind), e);
    }
}

static void
load_policies(struct fallback *fb)
{
    db_query(fb->db, "SELECT kind FROM hub.policies WHERE cardinality(fallback) > 0", 0, NULL,
             on_policies, fb);
}

static void
on_db_up(struct db *db, void *ud)
{
    struct fallback *fb = ud;
    load_policies(fb);
    flush_results(fb);
    plan(fb);
    claim_all(fb);
}

static void
on_db_down(struct db *db, void *ud, const char *why)
{
    struct fallback *fb = ud;
    fb->planning = 0;
    for (int ch = 0; ch < CHANNEL_COUNT; ch++)
        fb->claiming[ch] = 0;
}

void
fallback_notify(struct fallback *fb, const char *channel)
{
    if (!fb || fb->closing || !db_is_up(fb->db))
        return; /* its own on_db_up catches up */
    if (!strcmp(channel, FALLBACK_CHANNEL_POLICIES))
        load_policies(fb);
    else
        claim_all(fb);
}

void
fallback_listening(struct fallback *fb)
{
    if (!fb || fb->closing || !db_is_up(fb->db))
        return;
    load_policies(fb);
    claim_all(fb);
}

static const struct db_ops fallback_db_ops = {
    .on_up = on_db_up,
    .on_down = on_db_down,
};

int
fallback_wants_sent_marks(const struct fallback *fb, const char *kind)
{
    struct kind_entry *e = NULL;
    if (fb)
        HASH_FIND_STR(fb->sent_kinds, kind, e);
    return e != NULL;
}

/* Builds the provider of ch from the hub's configuration (see provider.h). */
static struct provider *
provider_new(const struct hub_config *cfg, enum channel ch, struct http_engine *http,
             const char **why)
{
    switch (ch) {
    case CHANNEL_PUSH: {
        const struct fcm_settings set = {
            .key = cfg->firebase_key,
            .key_file = cfg->firebase_key_file,
            .base_url = cfg->fcm_base_url,
        };
        return fcm_provider_new(&set, http, why);
    }
    case CHANNEL_SMS: {
        const struct twilio_settings set = {
            .sid = cfg->twilio_sid,
            .token = cfg->twilio_token,
            .from = cfg->twilio_from,
            .base_url = cfg->twilio_base_url,
        };
        return twilio_provider_new(&set, http, why);
    }
    case CHANNEL_EMAIL: {
        const struct smtp_settings set = {
            .url = cfg->smtp_url,
            .from = cfg->smtp_from,
            .user = cfg->smtp_user,
            .password = cfg->smtp_password,
            .plain_auth = cfg->smtp_plain_auth,
        };
        return smtp_provider_new(&set, http, why);
    }
    default:
        *why = NULL;
        return NULL;
    }
}

int
fallback_new(struct hub *hub, struct fallback **out)
{
    *out = NULL;
    struct fallback *fb = calloc(1, sizeof(*fb));
    if (!fb)
        return -1;
    fb->hub = hub;
    char host[64] = "hub";
    gethostname(host, sizeof(host) - 1);
    snprintf(fb->hub_id, sizeof(fb->hub_id), "%s:%d", host, (int)getpid());
    fb->results = sqlbatch_new(FALLBACK_RESULT_COLUMNS, FALLBACK_RESULT_BATCH, SIZE_MAX);
    fb->http = http_engine_new(hub->ctx, hub->vh);
    fb->db = db_new(hub->ctx, hub->vh, hub->cfg->database_url, "fallback", &fallback_db_ops, fb,
                    hub->cfg->db_retry_max_ms);
    if (!fb->results || !fb->http || !fb->db) {
        fallback_free(fb);
        return -1;
    }
    http_engine_set_max_per_host(fb->http, hub->cfg->provider_inflight);
    static const char *const off[CHANNEL_COUNT] = {
        [CHANNEL_PUSH] = "FIREBASE_SERVICE_ACCOUNT_KEY is not set: push disabled",
        [CHANNEL_SMS] = "TWILIO_ACCOUNT_SID is not set: SMS disabled",
        [CHANNEL_EMAIL] = "HUB_SMTP_URL is not set: e-mail disabled",
    };
    for (int ch = 0; ch < CHANNEL_COUNT; ch++) {
        const char *why = NULL;
        struct provider *p = provider_new(hub->cfg, (enum channel)ch, fb->http, &why);
        if (!p && why) {
            fprintf(stderr, "armonia-hub: %s\n", why);
            fallback_free(fb);
            return 2;
        }
        if (!p) {
            log_warn("fallback", "%s", off[ch]);
            continue;
        }
        breaker_init(&p->breaker, hub->cfg->breaker_threshold, hub->cfg->breaker_cooldown_ms);
        p->max_inflight = (unsigned)hub->cfg->provider_inflight;
        p->timeout_ms = hub->cfg->provider_timeout_ms;
        fb->prov[ch] = p;
    }
    *out = fb;
    return 0;
}

void
fallback_start(struct fallback *fb)
{
    db_start(fb->db);
    lws_sul_schedule(fb->hub->ctx, 0, &fb->tick, on_tick,
                     (lws_usec_t)fb->hub->cfg->fallback_tick_ms * 1000);
}

void
fallback_free(struct fallback *fb)
{
    if (!fb)
        return;
    lws_sul_cancel(&fb->tick);
    lws_sul_cancel(&fb->results_sul);
    fb->closing = 1;
    /* Aborted transfers report through on_sent, which needs the providers. */
    http_engine_free(fb->http);
    fb->http = NULL;
    for (int ch = 0; ch < CHANNEL_COUNT; ch++)
        if (fb->prov[ch])
            fb->prov[ch]->free(fb->prov[ch]);
    db_free(fb->db);
    struct kind_entry *e, *tmp;
    HASH_ITER(hh, fb->sent_kinds, e, tmp)
    {
        HASH_DEL(fb->sent_kinds, e);
        free(e->kind);
        free(e);
    }
    sqlbatch_free(fb->results);
    free(fb);
}
