/*
 * acks.c - batched writes of acks into hub.deliveries (see acks.h).
 */
#include "acks.h"
#include "db.h"
#include "hub.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ack {
    int64_t event_id;
    char *tenant;     /* owned */
    char *user;       /* owned */
    const char *role; /* a static role name (auth_role_name()), or NULL */
};

struct acks {
    struct ack *v; /* pending, oldest first; the first `inflight` are being written */
    size_t len, cap;
    size_t inflight;
    lws_sorted_usec_list_t sul;
    struct hub *hub;
    char sql[96];       /* the call with (ids, tenants, users) */
    char sql_roles[96]; /* the call with (ids, tenants, users, roles) */
};

struct acks *
acks_new(struct hub *hub, const char *fn)
{
    struct acks *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    q->hub = hub;
    snprintf(q->sql, sizeof(q->sql), "SELECT %s($1::bigint[], $2::text[], $3::text[])", fn);
    snprintf(q->sql_roles, sizeof(q->sql_roles),
             "SELECT %s($1::bigint[], $2::text[], $3::text[], $4::text[])", fn);
    return q;
}

static void
ack_free(struct ack *a)
{
    free(a->tenant);
    free(a->user);
}

/* Drops the first n entries. */
static void
acks_shift(struct acks *q, size_t n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n; i++)
        ack_free(&q->v[i]);
    memmove(q->v, q->v + n, (q->len - n) * sizeof(*q->v));
    q->len -= n;
}

int
acks_add(struct acks *q, int64_t event_id, const char *tenant, const char *user)
{
    return acks_add_role(q, event_id, tenant, user, NULL);
}

int
acks_add_role(struct acks *q, int64_t event_id, const char *tenant, const char *user,
              const char *role)
{
    if (q->len - q->inflight >= ACKS_MAX_PENDING && q->len > q->inflight) {
        log_warn("acks", "more than %d marks wait for the database; dropping the oldest",
                 ACKS_MAX_PENDING);
        ack_free(&q->v[q->inflight]);
        memmove(q->v + q->inflight, q->v + q->inflight + 1,
                (q->len - q->inflight - 1) * sizeof(*q->v));
        q->len--;
    }
    if (q->len == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 64;
        struct ack *v = realloc(q->v, cap * sizeof(*v));
        if (!v)
            return -1;
        q->v = v;
        q->cap = cap;
    }
    struct ack *a = &q->v[q->len];
    a->event_id = event_id;
    a->tenant = strdup(tenant);
    a->user = strdup(user);
    a->role = role;
    if (!a->tenant || !a->user) {
        ack_free(a);
        return -1;
    }
    q->len++;
    return 0;
}

static void
on_written(struct db *db, const PGresult *res, void *ud)
{
    struct acks *q = ud;
    size_t n = q->inflight;
    q->inflight = 0;
    if (res && PQresultStatus(res) == PGRES_TUPLES_OK) {
        acks_shift(q, n);
        return;
    }
    if (res) {
        /* A statement the database refuses would be refused again: drop it. */
        log_err("acks", "%s failed for %zu marks: %s", q->sql, n, PQresultErrorMessage(res));
        acks_shift(q, n);
    }
}

/* Appends s to a text[] literal being built in *out (names need no escaping). */
static int
lit_add(char **out, size_t *len, size_t *cap, const char *s, int quote)
{
    size_t need = strlen(s) + 4;
    if (*len + need >= *cap) {
        size_t c = (*cap + need) * 2;
        char *p = realloc(*out, c);
        if (!p)
            return -1;
        *out = p;
        *cap = c;
    }
    *len += (size_t)sprintf(*out + *len, "%s%s%s%s", *len > 1 ? "," : "", quote ? "\"" : "", s,
                            quote ? "\"" : "");
    return 0;
}

/*
 * Writes the oldest pending marks (up to ACKS_MAX_BATCH) in one statement.
 * A batch in which some mark names the acker's role passes a fourth array
 * of roles (NULL where a mark has none). Returns 1 while a write is in
 * flight, 0 when nothing was sent (nothing pending, database away, OOM).
 */
int
acks_flush(struct acks *q)
{
    struct hub *hub = q->hub;
    if (q->inflight)
        return 1;
    if (!q->len || !db_is_up(hub->work_db))
        return 0;
    size_t n = q->len < ACKS_MAX_BATCH ? q->len : ACKS_MAX_BATCH;
    int with_roles = 0;
    for (size_t i = 0; i < n; i++)
        if (q->v[i].role)
            with_roles = 1;
    int k_max = with_roles ? 4 : 3;
    char *lit[4] = {NULL, NULL, NULL, NULL};
    size_t len[4] = {0, 0, 0, 0}, cap[4] = {0, 0, 0, 0};
    int rc = 0;
    for (int k = 0; k < k_max && !rc; k++)
        rc = lit_add(&lit[k], &len[k], &cap[k], "{", 0);
    for (size_t i = 0; i < n && !rc; i++) {
        char id[24];
        snprintf(id, sizeof(id), "%lld", (long long)q->v[i].event_id);
        const char *role = q->v[i].role;
        rc = lit_add(&lit[0], &len[0], &cap[0], id, 0) ||
             lit_add(&lit[1], &len[1], &cap[1], q->v[i].tenant, 1) ||
             lit_add(&lit[2], &len[2], &cap[2], q->v[i].user, 1) ||
             (with_roles && lit_add(&lit[3], &len[3], &cap[3], role ? role : "NULL", role != NULL));
    }
    for (int k = 0; k < k_max && !rc; k++) {
        char *p = realloc(lit[k], len[k] + 2);
        if (!p) {
            rc = -1;
            break;
        }
        lit[k] = p;
        p[len[k]++] = '}';
        p[len[k]] = '\0';
    }
    if (!rc) {
        const char *params[4] = {lit[0], lit[1], lit[2], lit[3]};
        if (db_query(hub->work_db, with_roles ? q->sql_roles : q->sql, k_max, params, on_written,
                     q))
            q->inflight = n;
    }
    for (int k = 0; k < k_max; k++)
        free(lit[k]);
    return q->inflight ? 1 : 0;
}

static void
on_tick(lws_sorted_usec_list_t *sul)
{
    struct acks *q = lws_container_of(sul, struct acks, sul);
    acks_flush(q);
    lws_sul_schedule(q->hub->ctx, 0, &q->sul, on_tick, (lws_usec_t)ACKS_FLUSH_MS * 1000);
}

void
acks_start(struct acks *q)
{
    lws_sul_schedule(q->hub->ctx, 0, &q->sul, on_tick, (lws_usec_t)ACKS_FLUSH_MS * 1000);
}

size_t
acks_pending(const struct acks *q)
{
    return q ? q->len : 0;
}

void
acks_free(struct acks *q)
{
    if (!q)
        return;
    lws_sul_cancel(&q->sul);
    acks_shift(q, q->len);
    free(q->v);
    free(q);
}
