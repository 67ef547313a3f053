/*
 * acks.c - batched writes of acks into hub.deliveries (see acks.h).
 */
#include "acks.h"
#include "db.h"
#include "hub.h"
#include "log.h"
#include "sqlbatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct acks {
    struct sqlbatch *rows; /* owned; (event id, tenant, user, role) per mark */
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
    q->rows = sqlbatch_new(4, ACKS_MAX_BATCH, ACKS_MAX_PENDING);
    if (!q->rows) {
        free(q);
        return NULL;
    }
    q->hub = hub;
    snprintf(q->sql, sizeof(q->sql), "SELECT %s($1::bigint[], $2::text[], $3::text[])", fn);
    snprintf(q->sql_roles, sizeof(q->sql_roles),
             "SELECT %s($1::bigint[], $2::text[], $3::text[], $4::text[])", fn);
    return q;
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
    char id[24];
    snprintf(id, sizeof(id), "%lld", (long long)event_id);
    const char *row[4] = {id, tenant, user, role};
    int rc = sqlbatch_add(q->rows, row);
    if (rc == 1)
        log_warn("acks", "more than %d marks wait for the database; dropping the oldest",
                 ACKS_MAX_PENDING);
    return rc < 0 ? -1 : 0;
}

static void
on_written(struct db *db, const PGresult *res, void *ud)
{
    struct acks *q = ud;
    if (!res) {
        sqlbatch_retry(q->rows);
        return;
    }
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        /* A statement the database refuses would be refused again: drop it. */
        log_err("acks", "%s failed for %zu marks: %s", q->sql, sqlbatch_inflight(q->rows),
                PQresultErrorMessage(res));
    sqlbatch_done(q->rows);
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
    if (sqlbatch_inflight(q->rows))
        return 1;
    if (!sqlbatch_pending(q->rows) || !db_is_up(hub->work_db))
        return 0;
    char *lit[4];
    unsigned nulls;
    if (sqlbatch_take(q->rows, lit, &nulls) > 0) {
        int with_roles = !(nulls & 1u << 3);
        const char *params[4] = {lit[0], lit[1], lit[2], lit[3]};
        if (!db_query(hub->work_db, with_roles ? q->sql_roles : q->sql, with_roles ? 4 : 3, params,
                      on_written, q))
            sqlbatch_retry(q->rows);
    }
    for (int k = 0; k < 4; k++)
        free(lit[k]);
    return sqlbatch_inflight(q->rows) ? 1 : 0;
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
    return q ? sqlbatch_pending(q->rows) : 0;
}

void
acks_free(struct acks *q)
{
    if (!q)
        return;
    lws_sul_cancel(&q->sul);
    sqlbatch_free(q->rows);
    free(q);
}
