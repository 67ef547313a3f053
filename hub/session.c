/*
 * session.c - the per-connection protocol (docs/protocol.md).
 *
 * A connection starts in CONN_AUTH. A valid token moves it to
 * CONN_CHECKING while the tenant is verified against the database (cached
 * per tenant), then to CONN_READY with its automatic rooms and a welcome.
 * Every failure a client can cause gets an error frame naming the input;
 * authentication failures then close with 4001. Whether the tenant exists
 * is tenant.c's to find out, what an ack names ackcheck.c's.
 */
#include "session.h"
#include "ackcheck.h"
#include "hub.h"
#include "log.h"
#include "peer.h"
#include "replay.h"
#include "room.h"
#include "tenant.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

/* The sessions' timers (struct hub's sessions). */
struct sessions {
    struct hub *hub;
    lws_dll2_owner_t auth_fifo;       /* connections not yet authenticated, oldest first */
    lws_sorted_usec_list_t auth_sul;  /* the oldest of them's deadline */
    lws_sorted_usec_list_t sweep_sul; /* the once-a-second sweep (on_sweep) */
    session_tick_fn tick;             /* its per-connection work beyond ours, or NULL */
};

/*
 * Logs one line per authentication failure, for the operator and for tools
 * such as fail2ban: "auth failure from ADDR[ (forwarded ADDR)]: why
 * (session S)". The peer address comes from the socket; the forwarded one
 * only from a trusted proxy's headers. why is a static reason: the token
 * is never logged.
 */
static void
log_auth_failure(struct conn *c, const char *why)
{
    char peer[PEER_ADDR_LEN + 8];
    if (!c->wsi || !lws_get_peer_simple(c->wsi, peer, sizeof(peer)) || !*peer)
        snprintf(peer, sizeof(peer), "unknown");
    struct log_field f[] = {LOG_STR("peer", peer), LOG_STR("reason", why),
                            LOG_STR("session", c->session),
                            LOG_STR("forwarded", c->forwarded ? c->forwarded : "")};
    log_fields(LOG_INFO, "session", f, c->forwarded ? 4 : 3,
               "auth failure from %s%s%s%s: %s (session %s)", peer,
               c->forwarded ? " (forwarded " : "", c->forwarded ? c->forwarded : "",
               c->forwarded ? ")" : "", why, c->session);
}

static void
reject(struct conn *c, const char *why, const json_t *ref)
{
    c->hub->m.auth_failures++;
    log_auth_failure(c, why);
    conn_error(c, "unauthorized", why, ref);
    conn_close(c, 4001, "unauthorized");
}

/*
 * A token for a tenant the database does not have is answered exactly like
 * a forged one, so tokens cannot be used to probe which complexes exist.
 */
static void
reject_tenant(struct conn *c, const json_t *ref)
{
    log_info("session", "session %s: token names unknown tenant '%s'", c->session, c->who.tenant);
    reject(c, "bad signature", ref);
}

/* Parses a resume point: a non-negative integer. Returns 0 or -1. */
static int
parse_since(const char *s, int64_t *out)
{
    if (!*s || *s == '-' || *s == '+')
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < 0)
        return -1;
    *out = v;
    return 0;
}

/*
 * Splits the ?rooms=a,b value of the upgrade URL (lws has decoded it) into
 * an array of names, kept until welcome() joins them (an empty value asks
 * for none). A piece that is not UTF-8 cannot be named in an error frame:
 * it gets a bad_request of its own and is left out. Returns 0, or -1 on OOM.
 */
static int
url_rooms(struct conn *c, const char *val)
{
    if (!*val)
        return 0;
    json_t *a = json_array();
    if (!a)
        return -1;
    for (const char *p = val;; p++) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        json_t *name = json_stringn(p, n);
        if (!name)
            conn_error(c, "bad_request", "a room in ?rooms= is not UTF-8", NULL);
        else if (json_array_append_new(a, name)) {
            json_decref(a);
            return -1;
        }
        if (!end)
            break;
        p = end;
    }
    json_decref(c->auth_rooms);
    c->auth_rooms = a;
    return 0;
}

/*
 * Takes the "rooms" of a first auth frame: an array of room names, kept
 * until welcome() joins them (replacing ?rooms= of the URL). Anything but
 * an array is refused as a whole with bad_request and no extra room is
 * joined; an element that is not a string gets its own bad_request and the
 * others still count.
 */
static void
frame_rooms(struct conn *c, json_t *v, const json_t *ref)
{
    if (!json_is_array(v)) {
        conn_error(c, "bad_request", "rooms must be an array of room names (strings)", ref);
        return;
    }
    size_t i;
    json_t *r;
    json_array_foreach(v, i, r)
    {
        if (!json_is_string(r)) {
            char why[64];
            snprintf(why, sizeof(why), "rooms[%zu] must be a string room name", i);
            conn_error(c, "bad_request", why, ref);
        }
    }
    json_decref(c->auth_rooms);
    c->auth_rooms = json_incref(v);
}

/*
 * Authenticated: the auth deadline goes. Token expiry is not a timer per
 * connection (lws keeps timers in one sorted list, and inserting tens of
 * thousands of far-off deadlines costs O(n) each); the once-a-second
 * sweep calls session_check_expiry() instead.
 */
static void
end_auth_deadline(struct conn *c)
{
    lws_sul_cancel(&c->sul);
}

/*
 * Whether the session has lived HUB_SESSION_MAX_AGE_S since its first
 * authentication: in-band refreshes extend a token, never a session, so a
 * stolen token that is refreshed forever still has to sign in again (and
 * its tenant is checked again) once a session is that old.
 */
static int
session_too_old(const struct conn *c, int64_t wall_s)
{
    int max_age = c->hub->cfg->session_max_age_s;
    return max_age > 0 && wall_s - c->auth_at_s >= max_age;
}

/* Ends a session past HUB_SESSION_MAX_AGE_S: error unauthorized, then 4001. */
static void
end_old_session(struct conn *c, const json_t *ref)
{
    log_info("session", "session %s: %s of %s signed in %d s ago or more: closing, sign in again",
             c->session, c->who.sub, c->who.tenant, c->hub->cfg->session_max_age_s);
    conn_error(c, "unauthorized", "session too old; sign in again", ref);
    conn_close(c, 4001, "session too old; sign in again");
}

int
session_check_expiry(struct conn *c, int64_t wall_s)
{
    if (c->state == CONN_READY && session_too_old(c, wall_s)) {
        end_old_session(c, NULL);
        return 1;
    }
    if (c->state != CONN_READY || c->who.exp > INT64_MAX - AUTH_LEEWAY_S ||
        wall_s <= c->who.exp + AUTH_LEEWAY_S)
        return 0;
    reject(c, "token expired", NULL);
    return 1;
}

/* Queues an error frame about one room: {"type":"error",...,"room":room}. */
static void
room_error(struct conn *c, const char *code, const char *message, const char *room,
           const json_t *ref)
{
    c->hub->m.errors[metric_error_slot(code)]++;
    json_t *e = json_pack("{s:s, s:s, s:s, s:s}", "type", "error", "code", code, "message", message,
                          "room", room);
    if (e && ref)
        json_object_set(e, "ref", (json_t *)ref);
    if (!e || conn_reply(c, e))
        log_warn("session", "session %s: cannot send an error about a room", c->session);
    json_decref(e);
}

/*
 * Joins the rooms the client named with its credentials ("rooms" of the
 * auth frame, or ?rooms= of the upgrade URL) under the rules of subscribe:
 * a refused room gets its own error naming it (bad_request for a bad name
 * or beyond HUB_MAX_ROOMS_PER_CONN, forbidden for the role), the others are
 * joined and appended to rooms (the welcome's list). Called by welcome()
 * before any replay starts, so a resume covers these rooms too. Returns 0,
 * or -1 when memory ran out (the connection is then closing).
 */
static int
join_asked(struct conn *c, struct tenant *t, json_t *rooms)
{
    size_t i;
    json_t *v;
    json_array_foreach(c->auth_rooms, i, v)
    {
        const char *room = json_string_value(v);
        if (!room)
            continue; /* refused when the auth frame was read */
        int rc = room_may_subscribe(&c->who, room);
        if (rc == -1) {
            room_error(c, "bad_request", "room must be 1-100 bytes of [A-Za-z0-9_.:-]", room,
                       c->auth_ref);
            continue;
        }
        if (rc == -2) {
            room_error(c, "forbidden", "this role may not subscribe to that room", room,
                       c->auth_ref);
            continue;
        }
        if (reg_member_of(c->rooms, room))
            continue;
        if (c->n_rooms >= (unsigned)c->hub->cfg->max_rooms) {
            room_error(c, "bad_request", "too many rooms on this connection", room, c->auth_ref);
            continue;
        }
        if (reg_join(&c->hub->reg, t, room, c, &c->rooms) < 0) {
            conn_close(c, 1011, "out of memory");
            return -1;
        }
        c->n_rooms++;
        json_array_append_new(rooms, json_string(room));
    }
    return 0;
}

/* Joins the automatic rooms and those asked for, and sends welcome. */
static void
welcome(struct conn *c, struct tenant *t)
{
    struct hub *hub = c->hub;
    json_t *rooms = json_array();
    char name[ROOM_NAME_MAX + 8];
    const char *fixed[3] = {"all", name, NULL};
    snprintf(name, sizeof(name), "user:%s", c->who.sub);
    char role[32];
    snprintf(role, sizeof(role), "role:%s", auth_role_name(c->who.role));
    fixed[2] = role;
    for (int i = 0; i < 3; i++) {
        if (reg_join(&hub->reg, t, fixed[i], c, &c->rooms) > 0)
            c->n_rooms++;
        json_array_append_new(rooms, json_string(fixed[i]));
    }
    for (size_t i = 0; i < c->who.n_units; i++) {
        char unit[ROOM_NAME_MAX + 8];
        snprintf(unit, sizeof(unit), "unit:%s", c->who.units[i]);
        if (reg_join(&hub->reg, t, unit, c, &c->rooms) > 0) {
            c->n_rooms++;
            json_array_append_new(rooms, json_string(unit));
        }
    }
    int joined = join_asked(c, t, rooms);
    json_decref(c->auth_rooms);
    c->auth_rooms = NULL;
    /* From here on the tenant is c->tenant. A resident keeps its units:
     * on_ack() asks room_may_subscribe() whether an event to unit:<u> was
     * for it. A guard or admin may be in any unit room anyway, so its
     * units go (a few dozen bytes less per idle connection). */
    free(c->who.tenant);
    c->who.tenant = NULL;
    if (c->who.role != AUTH_ROLE_RESIDENT) {
        free(c->who.units);
        c->who.units = NULL;
        c->who.n_units = 0;
    }
    c->tenant = t;
    t->n_conns++;
    if (joined < 0 || c->state == CONN_CLOSING) {
        /* Out of memory, or the refusals overflowed the queue (4008). */
        json_decref(rooms);
        json_decref(c->auth_ref);
        c->auth_ref = NULL;
        return;
    }
    c->state = CONN_READY;
    end_auth_deadline(c);

    json_t *w =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:I}", "type", "welcome", "session", c->session,
                  "user", c->who.sub, "tenant", t->name, "role", auth_role_name(c->who.role),
                  "rooms", rooms, "last_seq", (json_int_t)t->last_seq);
    if (w && c->auth_ref)
        json_object_set(w, "ref", c->auth_ref);
    if (!w || conn_reply(c, w))
        log_warn("session", "session %s: cannot send welcome", c->session);
    json_decref(w);
    json_decref(c->auth_ref);
    c->auth_ref = NULL;
    if (c->since >= 0)
        replay_start(c);
    else
        c->last_seq = t->last_seq; /* live from the welcome's last_seq on */
    log_debug("session", "session %s: %s %s of %s ready in %u rooms", c->session,
              auth_role_name(c->who.role), c->who.sub, t->name, c->n_rooms);
}

/* The tenant check's answer for c (tenant.h's tenant_verdict_fn; main.c wires it). */
void
session_tenant_verdict(struct conn *c, struct tenant *t)
{
    if (t->check == TENANT_KNOWN)
        welcome(c, t);
    else if (t->check == TENANT_UNKNOWN)
        reject_tenant(c, c->auth_ref);
    else {
        conn_error(c, "internal", "cannot verify the tenant now; try again", c->auth_ref);
        conn_close(c, 1013, "try again later");
    }
}

/* Handles a token from the header or an auth frame. */
static void
authenticate(struct conn *c, const char *token, size_t len, const json_t *ref)
{
    const struct hub_config *cfg = c->hub->cfg;
    const struct auth_policy policy = {
        .max_ttl_s = cfg->jwt_max_ttl_s,
        .audience = cfg->jwt_audience,
        .issuer = cfg->jwt_issuer,
        .names = cfg->claim_names,
    };
    struct auth_claims who;
    const char *why;
    int64_t now_s = hub_wall_s();
    if (auth_verify_policy(token, len, cfg->jwt_secret, cfg->jwt_secret_len, now_s, &policy, &who,
                           &why)) {
        reject(c, why, ref);
        return;
    }
    if (c->state == CONN_READY && session_too_old(c, now_s)) {
        auth_claims_free(&who);
        end_old_session(c, ref);
        return;
    }
    if (c->state == CONN_READY) {
        /* In-band refresh: the same identity, a later expiry. */
        if (strcmp(who.sub, c->who.sub) || strcmp(who.tenant, c->tenant->name) ||
            who.role != c->who.role) {
            auth_claims_free(&who);
            reject(c, "a refreshed token must name the same sub, tenant and role", ref);
            return;
        }
        c->who.exp = who.exp;
        auth_claims_free(&who);
        end_auth_deadline(c);
        json_decref(c->auth_ref);
        c->auth_ref = ref ? json_incref((json_t *)ref) : NULL;
        json_t *w = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "type", "welcome", "session",
                              c->session, "user", c->who.sub, "tenant", c->tenant->name, "role",
                              auth_role_name(c->who.role), "last_seq",
                              (json_int_t)c->tenant->last_seq, "exp", (json_int_t)c->who.exp);
        json_t *rooms = json_array();
        for (struct member *m = c->rooms; m; m = m->cnext)
            json_array_insert_new(rooms, 0, json_string(m->room->name));
        json_object_set_new(w, "rooms", rooms);
        if (ref)
            json_object_set(w, "ref", (json_t *)ref);
        conn_reply(c, w);
        json_decref(w);
        json_decref(c->auth_ref);
        c->auth_ref = NULL;
        return;
    }
    c->who = who;
    c->auth_at_s = now_s;
    json_decref(c->auth_ref);
    c->auth_ref = ref ? json_incref((json_t *)ref) : NULL;
    tenant_admit(c);
}

/* The time to authenticate ran out. */
static void
auth_deadline_passed(struct conn *c)
{
    if (c->state == CONN_CHECKING) {
        conn_error(c, "internal", "cannot verify the tenant now; try again", c->auth_ref);
        conn_close(c, 1013, "try again later");
    } else if (c->state == CONN_AUTH)
        reject(c, "authentication timed out", NULL);
}

/*
 * Authentication deadlines. Every connection gets the same time to
 * authenticate, so deadlines come in the order connections open: they wait
 * in a FIFO (through conn->sul's list node, which lws_sul_cancel() unlinks
 * like any timer) under one timer for the oldest. Putting one lws timer per
 * handshake in lws's sorted list would walk every pending deadline each time.
 */
static void
on_auth_deadlines(lws_sorted_usec_list_t *sul)
{
    struct sessions *ss = lws_container_of(sul, struct sessions, auth_sul);
    lws_usec_t now = lws_now_usecs();
    struct lws_dll2 *d;
    while ((d = lws_dll2_get_head(&ss->auth_fifo))) {
        struct conn *c = lws_container_of(d, struct conn, sul.list);
        if (c->sul.us > now) {
            lws_sul_schedule(ss->hub->ctx, 0, &ss->auth_sul, on_auth_deadlines, c->sul.us - now);
            return;
        }
        lws_dll2_remove(d);
        auth_deadline_passed(c);
    }
}

static void
arm_auth_deadline(struct conn *c)
{
    struct hub *hub = c->hub;
    struct sessions *ss = hub->sessions;
    lws_usec_t wait = (lws_usec_t)hub->cfg->auth_timeout_ms * 1000;
    lws_dll2_remove(&c->sul.list);
    c->sul.us = lws_now_usecs() + wait;
    lws_dll2_add_tail(&c->sul.list, &ss->auth_fifo);
    if (ss->auth_fifo.count == 1)
        lws_sul_schedule(hub->ctx, 0, &ss->auth_sul, on_auth_deadlines, wait);
}

/* Once a second: closes connections whose token has expired or whose
 * session is too old, and those that have had frames waiting, unwritten,
 * too long (conn_check_stall). */
static void
on_sweep(lws_sorted_usec_list_t *sul)
{
    struct sessions *ss = lws_container_of(sul, struct sessions, sweep_sul);
    struct hub *hub = ss->hub;
    int64_t now = hub_now_ms(), wall_s = hub_wall_s();
    for (struct conn *c = hub->conns; c; c = c->next)
        if (!session_check_expiry(c, wall_s) && !(ss->tick && ss->tick(c, now)))
            conn_check_stall(c, now);
    lws_sul_schedule(hub->ctx, 0, &ss->sweep_sul, on_sweep, SESSION_SWEEP_MS * 1000);
}

struct sessions *
session_init(struct hub *hub, session_tick_fn tick)
{
    struct sessions *ss = calloc(1, sizeof(*ss));
    if (ss) {
        ss->hub = hub;
        ss->tick = tick;
    }
    return ss;
}

void
session_start(struct sessions *ss)
{
    lws_sul_schedule(ss->hub->ctx, 0, &ss->sweep_sul, on_sweep, SESSION_SWEEP_MS * 1000);
}

void
session_stop(struct sessions *ss)
{
    if (!ss)
        return;
    lws_sul_cancel(&ss->auth_sul);
    lws_sul_cancel(&ss->sweep_sul);
}

void
session_free(struct sessions *ss)
{
    session_stop(ss);
    free(ss);
}

/*
 * A session id: 8 random bytes in hex. Drawn from a pool refilled 32 ids
 * at a time (one RAND_bytes() call costs more than the rest of opening a
 * session).
 */
static void
new_session_id(char out[17])
{
    static unsigned char pool[256];
    static size_t used = sizeof(pool);
    static const char hex[] = "0123456789abcdef";
    if (used + 8 > sizeof(pool)) {
        if (RAND_bytes(pool, sizeof(pool)) != 1)
            memset(pool, 0, sizeof(pool));
        used = 0;
    }
    for (int i = 0; i < 8; i++) {
        out[2 * i] = hex[pool[used + i] >> 4];
        out[2 * i + 1] = hex[pool[used + i] & 15];
    }
    out[16] = '\0';
    OPENSSL_cleanse(pool + used, 8);
    used += 8;
}

/*
 * Behind a trusted proxy (HUB_TRUSTED_PROXIES), keeps the client address
 * it forwarded, for the log: the headers are gone once the upgrade is over.
 * Headers from any other peer are not believed. Returns 0, or -1 when out
 * of memory.
 */
static int
note_forwarded(struct conn *c)
{
    const struct hub_config *cfg = c->hub->cfg;
    char peer[PEER_ADDR_LEN + 8], addr[PEER_ADDR_LEN];
    char xff[PEER_FWD_HDR_MAX];

    if (!cfg->n_proxies || !lws_get_peer_simple(c->wsi, peer, sizeof(peer)) ||
        !peer_in_nets(peer, cfg->proxies, cfg->n_proxies))
        return 0;
    if (lws_hdr_copy(c->wsi, xff, sizeof(xff), WSI_TOKEN_X_FORWARDED_FOR) < 0)
        return 0; /* absent, or longer than any chain we would walk */
    if (peer_forwarded(xff, cfg->proxies, cfg->n_proxies, addr) < 0)
        return 0;
    c->forwarded = strdup(addr);
    return c->forwarded ? 0 : -1;
}

void
session_open(struct conn *c)
{
    new_session_id(c->session);
    if (note_forwarded(c)) {
        conn_close(c, 1011, "out of memory");
        return;
    }
    c->since = -1;
    c->tokens = c->hub->cfg->rate_burst;
    c->tokens_at_ms = hub_now_ms();
    c->progress_ms = c->tokens_at_ms;
    c->state = CONN_AUTH;
    arm_auth_deadline(c);
    if (c->fmt == FRAME_SIO)
        return; /* Socket.IO names its credentials in its CONNECT packet only (sio.c) */

    char arg[40];
    const char *val = lws_get_urlarg_by_name(c->wsi, "since=", arg, sizeof(arg));
    if (val) {
        int64_t since;
        if (parse_since(val, &since)) {
            conn_error(c, "bad_request", "since must be a non-negative integer", NULL);
        } else {
            c->since = since;
        }
    }

    /* ?rooms=: a buffer as long as all the query's arguments holds any one. */
    int args = lws_hdr_total_length(c->wsi, WSI_TOKEN_HTTP_URI_ARGS);
    if (args > 0) {
        char *rooms = malloc((size_t)args + 8);
        val = rooms ? lws_get_urlarg_by_name(c->wsi, "rooms=", rooms, args + 8) : NULL;
        int oom = !rooms || (val && url_rooms(c, val));
        free(rooms);
        if (oom) {
            conn_close(c, 1011, "out of memory");
            return;
        }
    }

    int n = lws_hdr_total_length(c->wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (n <= 0)
        return;
    char *hdr = malloc((size_t)n + 1);
    if (!hdr || lws_hdr_copy(c->wsi, hdr, n + 1, WSI_TOKEN_HTTP_AUTHORIZATION) < 0) {
        free(hdr);
        conn_close(c, 1011, "out of memory");
        return;
    }
    const char *tok = hdr;
    if (!strncasecmp(tok, "Bearer ", 7)) {
        tok += 7;
        while (*tok == ' ')
            tok++;
        authenticate(c, tok, strlen(tok), NULL);
    } else {
        reject(c, "the Authorization header must be 'Bearer <token>'", NULL);
    }
    free(hdr);
}

/* Refills the inbound token bucket; returns 0 when one frame may pass. */
static int
rate_take(struct conn *c)
{
    const struct hub_config *cfg = c->hub->cfg;
    int64_t now = hub_now_ms();
    c->tokens += (double)(now - c->tokens_at_ms) * cfg->rate_limit / 1000.0;
    if (c->tokens > cfg->rate_burst)
        c->tokens = cfg->rate_burst;
    c->tokens_at_ms = now;
    if (c->tokens < 1.0)
        return -1;
    c->tokens -= 1.0;
    return 0;
}

int
session_charge_frames(struct conn *c, unsigned n)
{
    if (c->state == CONN_CLOSING)
        return -1;
    for (; n; n--) {
        if (rate_take(c)) {
            c->hub->m.rate_limited++;
            conn_error(c, "rate_limited", "too many frames; slow down", NULL);
            conn_close_lingering(c, 4029, "rate limited");
            return -1;
        }
    }
    return 0;
}

static const char *
str_field(json_t *msg, const char *key)
{
    json_t *v = json_object_get(msg, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void
on_subscribe(struct conn *c, json_t *msg, const json_t *ref, int join)
{
    const char *room = str_field(msg, "room");
    if (!room || !room_name_valid(room, strlen(room))) {
        conn_error(c, "bad_request", "room must be 1-100 bytes of [A-Za-z0-9_.:-]", ref);
        return;
    }
    json_t *reply;
    if (join) {
        int rc = room_may_subscribe(&c->who, room);
        if (rc == -2) {
            conn_error(c, "forbidden", "this role may not subscribe to that room", ref);
            return;
        }
        if (rc) {
            conn_error(c, "bad_request", "bad room name", ref);
            return;
        }
        if (c->n_rooms >= (unsigned)c->hub->cfg->max_rooms) {
            conn_error(c, "bad_request", "too many rooms on this connection", ref);
            return;
        }
        int j = reg_join(&c->hub->reg, c->tenant, room, c, &c->rooms);
        if (j < 0) {
            conn_close(c, 1011, "out of memory");
            return;
        }
        c->n_rooms += (unsigned)j;
        reply = json_pack("{s:s, s:s}", "type", "subscribed", "room", room);
    } else {
        c->n_rooms -= (unsigned)reg_leave(&c->hub->reg, room, &c->rooms);
        reply = json_pack("{s:s, s:s}", "type", "unsubscribed", "room", room);
    }
    if (ref)
        json_object_set(reply, "ref", (json_t *)ref);
    conn_reply(c, reply);
    json_decref(reply);
}

/*
 * An ack: its id must be a positive integer; what it names is ackcheck.c's
 * to check.
 */
static void
on_ack(struct conn *c, json_t *msg, const json_t *ref)
{
    json_t *id = json_object_get(msg, "id");
    if (!json_is_integer(id) || json_integer_value(id) <= 0) {
        conn_error(c, "bad_request", "ack needs a positive integer id", ref);
        return;
    }
    ackcheck_ack(c, json_integer_value(id), ref);
}

void
session_message(struct conn *c, const void *data, size_t len)
{
    if (c->state == CONN_CLOSING) {
        /* Closing (e.g. the hub is stopping): nothing is answered any more,
         * but acks the client sent before it saw the close still count. */
        json_t *msg = c->tenant ? frame_decode(c->fmt, data, len, NULL) : NULL;
        if (msg)
            session_handle(c, msg);
        json_decref(msg);
        return;
    }
    if (rate_take(c)) {
        c->hub->m.rate_limited++;
        conn_error(c, "rate_limited", "too many frames; slow down", NULL);
        conn_close_lingering(c, 4029, "rate limited");
        return;
    }
    const char *why;
    json_t *msg = frame_decode(c->fmt, data, len, &why);
    if (!msg) {
        c->hub->m.bad_frames++;
        conn_error(c, "bad_request", why, NULL);
        return;
    }
    session_handle(c, msg);
    json_decref(msg);
}

void
session_handle(struct conn *c, json_t *msg)
{
    const json_t *ref = json_object_get(msg, "ref");
    const char *type = str_field(msg, "type");
    if (c->state == CONN_CLOSING) {
        if (c->tenant && type && !strcmp(type, "ack"))
            on_ack(c, msg, NULL);
        return;
    }
    if (!type) {
        c->hub->m.bad_frames++;
        conn_error(c, "bad_request", "every frame needs a string field type", ref);
    } else if (c->state == CONN_AUTH && strcmp(type, "auth")) {
        conn_error(c, "unauthorized", "authenticate first: send an auth frame", ref);
    } else if (!strcmp(type, "ping")) {
        json_t *pong = json_pack("{s:s}", "type", "pong");
        if (ref)
            json_object_set(pong, "ref", (json_t *)ref);
        conn_reply(c, pong);
        json_decref(pong);
    } else if (!strcmp(type, "auth")) {
        const char *token = str_field(msg, "token");
        json_t *since = json_object_get(msg, "since");
        json_t *rooms = json_object_get(msg, "rooms");
        if (rooms && token && c->state == CONN_AUTH)
            frame_rooms(c, rooms, ref);
        if (c->state == CONN_CHECKING) {
            conn_error(c, "bad_request", "authentication already in progress", ref);
        } else if (!token) {
            reject(c, "auth needs a string field token", ref);
        } else if (since && c->state == CONN_AUTH &&
                   (!json_is_integer(since) || json_integer_value(since) < 0)) {
            conn_error(c, "bad_request", "since must be a non-negative integer", ref);
            authenticate(c, token, strlen(token), ref);
        } else {
            if (since && c->state == CONN_AUTH)
                c->since = json_integer_value(since);
            authenticate(c, token, strlen(token), ref);
        }
    } else if (c->state != CONN_READY) {
        conn_error(c, "unauthorized", "authenticate first: send an auth frame", ref);
    } else if (!strcmp(type, "subscribe")) {
        on_subscribe(c, msg, ref, 1);
    } else if (!strcmp(type, "unsubscribe")) {
        on_subscribe(c, msg, ref, 0);
    } else if (!strcmp(type, "ack")) {
        on_ack(c, msg, ref);
    } else {
        c->hub->m.bad_frames++;
        conn_error(c, "bad_request", "unknown frame type", ref);
    }
}

void
session_closed(struct conn *c)
{
    json_decref(c->auth_rooms);
    c->auth_rooms = NULL;
    free(c->forwarded);
    c->forwarded = NULL;
    ackcheck_closed(c);
    tenant_forget(c);
    if (c->tenant) {
        reg_leave_all(&c->hub->reg, &c->rooms);
        c->tenant->n_conns--;
        c->tenant = NULL;
    }
    conn_release(c);
}
