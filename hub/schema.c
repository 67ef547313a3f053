/*
 * schema.c - the steps of schema hub: comparing a database's record with
 * the binary's, `armonia-hub migrate`, and the check at start (schema.h).
 */
#include "schema.h"
#include "db.h"
#include "hub.h"
#include "log.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>

/* The advisory lock key schema applications hold (scripts/pg.sh uses the
 * same), distinct from the outbox's commit-order lock. */
#define SCHEMA_LOCK_KEY "4242000001"

/* The record's query; the hub's role may read the table (080_roles.sql). */
#define SCHEMA_RECORD_SQL "SELECT step, checksum FROM hub.schema_migrations ORDER BY step"

void
schema_checksum(const struct schema_step *s, char out[SCHEMA_SUM_HEX + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!EVP_Digest(s->sql, s->len, md, &n, EVP_sha256(), NULL) || n * 2 != SCHEMA_SUM_HEX) {
        memset(out, '0', SCHEMA_SUM_HEX);
        out[SCHEMA_SUM_HEX] = '\0';
        return;
    }
    for (unsigned int i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Index of the binary's step called name, or -1. */
static int
step_index(const char *name)
{
    for (unsigned i = 0; i < schema_n_steps; i++)
        if (!strcmp(schema_steps[i].name, name))
            return (int)i;
    return -1;
}

enum schema_state
schema_compare(const struct schema_applied *a, size_t n, char *why, size_t whylen)
{
    if (!n) {
        snprintf(why, whylen,
                 "the database has no schema hub (no step recorded in hub.schema_migrations): "
                 "run \"armonia-hub migrate\" as the schema's owner");
        return SCHEMA_MISSING;
    }
    for (size_t i = 0; i < n; i++)
        if (step_index(a[i].step) < 0) {
            snprintf(why, whylen,
                     "schema hub is ahead of this armonia-hub: step %s was applied by another "
                     "version, which this one does not know; run the armonia-hub that applied it",
                     a[i].step);
            return SCHEMA_AHEAD;
        }
    for (size_t i = 0; i < n; i++) {
        char sum[SCHEMA_SUM_HEX + 1];
        schema_checksum(&schema_steps[step_index(a[i].step)], sum);
        if (strcmp(sum, a[i].checksum)) {
            snprintf(why, whylen,
                     "schema hub step %s was applied from another text (checksum %.12s... in the "
                     "database, %.12s... in this armonia-hub): a released step is never edited; "
                     "run the armonia-hub whose step it is, or restore the step's text",
                     a[i].step, a[i].checksum, sum);
            return SCHEMA_EDITED;
        }
    }
    for (unsigned k = 0; k < schema_n_steps; k++) {
        size_t i = 0;
        while (i < n && strcmp(a[i].step, schema_steps[k].name))
            i++;
        if (i == n) {
            snprintf(why, whylen,
                     "schema hub is behind this armonia-hub: step %s is not applied (%zu of %u "
                     "steps are): run \"armonia-hub migrate\" as the schema's owner",
                     schema_steps[k].name, n, schema_n_steps);
            return SCHEMA_BEHIND;
        }
    }
    snprintf(why, whylen, "schema hub is at step %s (%u steps)",
             schema_steps[schema_n_steps - 1].name, schema_n_steps);
    return SCHEMA_OK;
}

/* The record as read: rows of a SCHEMA_RECORD_SQL result (strings borrowed;
 * caller frees the array). NULL with *n 0 when there are none. */
static struct schema_applied *
record_of(const PGresult *res, size_t *n)
{
    *n = (size_t)PQntuples(res);
    if (!*n)
        return NULL;
    struct schema_applied *a = calloc(*n, sizeof(*a));
    if (!a) {
        *n = 0;
        return NULL;
    }
    for (size_t i = 0; i < *n; i++)
        a[i] = (struct schema_applied){PQgetvalue(res, (int)i, 0), PQgetvalue(res, (int)i, 1)};
    return a;
}

/* ---- armonia-hub migrate -------------------------------------------------- */

/* Runs sql; 0 when it succeeded (any status but an error), else prints
 * what and returns -1. */
static int
exec_ok(PGconn *pg, const char *sql, const char *what)
{
    PGresult *r = PQexec(pg, sql);
    ExecStatusType st = PQresultStatus(r);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY;
    if (!ok)
        fprintf(stderr, "armonia-hub migrate: %s failed: %s", what, PQerrorMessage(pg));
    PQclear(r);
    return ok ? 0 : -1;
}

/* Reads the record into *res (the caller clears it); NULL *res when the
 * table does not exist yet. -1 when the query failed (printed). */
static int
read_record(PGconn *pg, PGresult **res)
{
    *res = NULL;
    PGresult *r = PQexec(pg, "SELECT to_regclass('hub.schema_migrations') IS NOT NULL");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "armonia-hub migrate: cannot read the database: %s", PQerrorMessage(pg));
        PQclear(r);
        return -1;
    }
    int exists = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (!exists)
        return 0;
    r = PQexec(pg, SCHEMA_RECORD_SQL);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "armonia-hub migrate: cannot read hub.schema_migrations: %s",
                PQerrorMessage(pg));
        PQclear(r);
        return -1;
    }
    *res = r;
    return 0;
}

/* Whether the record (NULL: none) has step name. */
static int
recorded(const PGresult *res, const char *name)
{
    for (int i = 0; res && i < PQntuples(res); i++)
        if (!strcmp(PQgetvalue(res, i, 0), name))
            return 1;
    return 0;
}

/* Applies step s and records it, in one transaction. -1 (printed, rolled
 * back) when it failed. */
static int
apply_step(PGconn *pg, const struct schema_step *s)
{
    char sum[SCHEMA_SUM_HEX + 1];
    schema_checksum(s, sum);
    if (exec_ok(pg, "BEGIN", "BEGIN"))
        return -1;
    PGresult *r = PQexec(pg, s->sql);
    ExecStatusType st = PQresultStatus(r);
    PQclear(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
        fprintf(stderr, "armonia-hub migrate: step %s failed, nothing of it applied: %s", s->name,
                PQerrorMessage(pg));
        exec_ok(pg, "ROLLBACK", "ROLLBACK");
        return -1;
    }
    const char *params[2] = {s->name, sum};
    r = PQexecParams(pg, "INSERT INTO hub.schema_migrations (step, checksum) VALUES ($1, $2)", 2,
                     NULL, params, NULL, NULL, 0);
    st = PQresultStatus(r);
    PQclear(r);
    if (st != PGRES_COMMAND_OK) {
        fprintf(stderr, "armonia-hub migrate: recording step %s failed: %s", s->name,
                PQerrorMessage(pg));
        exec_ok(pg, "ROLLBACK", "ROLLBACK");
        return -1;
    }
    if (exec_ok(pg, "COMMIT", "COMMIT"))
        return -1;
    printf("applied %s (sha256 %.12s...)\n", s->name, sum);
    return 0;
}

int
schema_migrate(const char *conninfo, int status_only)
{
    PGconn *pg = PQconnectdb(conninfo);
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "armonia-hub migrate: cannot connect: %s", PQerrorMessage(pg));
        PQfinish(pg);
        return 1;
    }
    int rc = 1;
    PGresult *res = NULL;
    /* Notices of IF NOT EXISTS and the like are not news to an operator. */
    if (exec_ok(pg, "SET client_min_messages = warning", "SET") ||
        exec_ok(pg, "SELECT pg_advisory_lock(" SCHEMA_LOCK_KEY ")", "taking the schema lock") ||
        read_record(pg, &res))
        goto out;
    size_t n = 0;
    struct schema_applied *a = res ? record_of(res, &n) : NULL;
    char why[512];
    enum schema_state st = schema_compare(a, n, why, sizeof(why));
    free(a);
    if (st == SCHEMA_AHEAD || st == SCHEMA_EDITED) {
        fprintf(stderr, "armonia-hub migrate: refused: %s\n", why);
        rc = 2;
        goto out;
    }
    if (status_only) {
        for (unsigned k = 0; k < schema_n_steps; k++) {
            char sum[SCHEMA_SUM_HEX + 1];
            schema_checksum(&schema_steps[k], sum);
            printf("%-8s %s (sha256 %.12s...)\n",
                   recorded(res, schema_steps[k].name) ? "applied" : "pending",
                   schema_steps[k].name, sum);
        }
        rc = st == SCHEMA_OK ? 0 : 3;
        goto out;
    }
    unsigned applied = 0;
    for (unsigned k = 0; k < schema_n_steps; k++) {
        if (recorded(res, schema_steps[k].name))
            continue;
        if (apply_step(pg, &schema_steps[k]))
            goto out;
        applied++;
    }
    if (applied)
        printf("schema hub is at step %s: %u step%s applied\n",
               schema_steps[schema_n_steps - 1].name, applied, applied == 1 ? "" : "s");
    else
        printf("schema hub is up to date at step %s (%u steps)\n",
               schema_steps[schema_n_steps - 1].name, schema_n_steps);
    rc = 0;
out:
    PQclear(res);
    PQfinish(pg); /* ends the session: the advisory lock goes with it */
    return rc;
}

/* ---- the check at start --------------------------------------------------- */

/* A check in flight. */
struct schema_check {
    struct hub *hub;
    void (*ok)(struct hub *);
    void (*refuse)(struct hub *);
};

static void
on_record(struct db *db, const PGresult *res, void *ud)
{
    struct schema_check *chk = ud;
    struct hub *hub = chk->hub;
    void (*ok)(struct hub *) = chk->ok, (*refuse)(struct hub *) = chk->refuse;
    free(chk);
    if (!res)
        return; /* the connection went: checked again when it is back */
    char why[512];
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (code && (!strcmp(code, "42P01") || !strcmp(code, "3F000"))) {
            /* undefined_table, invalid_schema_name */
            schema_compare(NULL, 0, why, sizeof(why));
        } else if (code && !strcmp(code, "42501")) {
            snprintf(why, sizeof(why),
                     "the hub's database role may not read hub.schema_migrations: grant it "
                     "armonia_hub (schema/080_roles.sql)");
        } else {
            log_warn("schema", "cannot read hub.schema_migrations (%s): trying again",
                     PQresultErrorMessage(res));
            return;
        }
        log_err("schema", "%s", why);
        refuse(hub);
        return;
    }
    size_t n = 0;
    struct schema_applied *a = record_of(res, &n);
    if (n && !a) {
        log_err("schema", "out of memory");
        refuse(hub);
        return;
    }
    enum schema_state st = schema_compare(a, n, why, sizeof(why));
    free(a);
    if (st != SCHEMA_OK) {
        log_err("schema", "%s", why);
        refuse(hub);
        return;
    }
    log_debug("schema", "%s", why);
    ok(hub);
}

void
schema_check(struct hub *hub, void (*ok)(struct hub *), void (*refuse)(struct hub *))
{
    struct schema_check *chk = malloc(sizeof(*chk));
    if (!chk)
        return;
    *chk = (struct schema_check){hub, ok, refuse};
    if (!db_query_urgent(hub->work_db, SCHEMA_RECORD_SQL, 0, NULL, on_record, chk))
        free(chk);
}
