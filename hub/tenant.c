/*
 * tenant.c - tenant verification for connections being admitted (tenant.h).
 */
#include "tenant.h"
#include "conn.h"
#include "db.h"
#include "hub.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

struct tenant_checks {
    struct hub *hub;           /* the hub whose work connection asks */
    tenant_verdict_fn verdict; /* session.c's answer to a waiting connection */
};

struct tenant_checks *
tenant_checks_new(struct hub *hub, tenant_verdict_fn verdict)
{
    struct tenant_checks *tc = calloc(1, sizeof(*tc));
    if (tc)
        *tc = (struct tenant_checks){.hub = hub, .verdict = verdict};
    return tc;
}

void
tenant_checks_free(struct tenant_checks *tc)
{
    free(tc);
}

/* Gives every connection waiting for t its verdict, unless a lookup is in flight. */
static void
tenant_checked(struct tenant *t)
{
    if (t->checking)
        return;
    struct conn *w = t->waiters;
    t->waiters = NULL;
    while (w) {
        struct conn *next = w->wnext;
        w->wnext = NULL;
        if (w->state == CONN_CHECKING)
            w->hub->tenants->verdict(w, t);
        w = next;
    }
}

static void
on_tenant_row(struct db *db, const PGresult *res, void *ud)
{
    struct tenant *t = ud;
    t->checking = 0;
    if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        t->check = !strcmp(PQgetvalue(res, 0, 0), "t") ? TENANT_KNOWN : TENANT_UNKNOWN;
        t->checked_at_ms = hub_now_ms();
        int64_t last = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        if (last > t->last_seq)
            t->last_seq = last;
    } else if (res) {
        log_warn("tenant", "tenant lookup failed: %s", PQresultErrorMessage(res));
    }
    tenant_checked(t);
}

/* Asks the database whether t exists, unless a lookup is already in flight. */
static void
check_tenant(struct tenant_checks *tc, struct tenant *t)
{
    if (t->checking)
        return;
    static const char sql[] = "SELECT hub.is_tenant($1), "
                              "(SELECT coalesce(max(seq), 0) FROM hub.outbox WHERE tenant = $1)";
    const char *params[1] = {t->name};
    if (db_query(tc->hub->work_db, sql, 1, params, on_tenant_row, t))
        t->checking = 1;
    else if (t->check == TENANT_KNOWN)
        tenant_checked(t); /* stale but positive: admit */
    /* Otherwise the waiters wait for the database (tenant_db_up) or
     * their authentication deadline, whichever comes first. */
}

void
tenant_db_up(struct tenant_checks *tc)
{
    for (struct tenant *t = tc->hub->reg.tenants; t; t = t->hh.next)
        if (t->waiters && !t->checking)
            check_tenant(tc, t);
}

void
tenant_admit(struct conn *c)
{
    struct hub *hub = c->hub;
    struct tenant_checks *tc = hub->tenants;
    struct tenant *t = reg_tenant(&hub->reg, c->who.tenant, 1);
    if (!t) {
        conn_close(c, 1011, "out of memory");
        return;
    }
    c->state = CONN_CHECKING;
    int64_t age = hub_now_ms() - t->checked_at_ms;
    if ((t->check == TENANT_KNOWN && age < hub->cfg->tenant_cache_ms) ||
        (t->check == TENANT_UNKNOWN && age < TENANT_NEGATIVE_CACHE_MS)) {
        tc->verdict(c, t);
        return;
    }
    c->wnext = t->waiters;
    t->waiters = c;
    check_tenant(tc, t);
}

void
tenant_forget(struct conn *c)
{
    if (!c->who.tenant || c->tenant)
        return;
    struct tenant *t = reg_tenant(&c->hub->reg, c->who.tenant, 0);
    if (!t)
        return;
    for (struct conn **pp = &t->waiters; *pp; pp = &(*pp)->wnext)
        if (*pp == c) {
            *pp = c->wnext;
            break;
        }
}
