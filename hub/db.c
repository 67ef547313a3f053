/*
 * db.c - a non-blocking libpq connection driven by the lws event loop.
 *
 * States: IDLE (not started) -> CONNECTING (PQconnectPoll steps, each run
 * only when the socket is ready in the direction libpq asked for) -> UP
 * (queries flow) -> RETRY (waiting out the backoff) -> CONNECTING ...
 */
#include "db.h"
#include "adopt.h"
#include "log.h"
#include "soon.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How long one connection attempt may take before it is abandoned. */
#define DB_CONNECT_TIMEOUT_MS 10000
/* First reconnection delay; doubles per failed attempt up to retry_max_ms. */
#define DB_RETRY_BASE_MS 100

enum db_state { DB_IDLE, DB_CONNECTING, DB_UP, DB_RETRY };

/* One queued query; owned by its db until its callback has run. */
struct db_req {
    struct db_req *next;
    db_result_cb cb; /* NULL once cancelled */
    void *ud;
    char *sql;
    const char *stmt; /* name of a prepared statement for sql (static), or NULL */
    int nparams;
    char **params;
};

/* Statements prepared per connection at most (others go unprepared). */
#define DB_MAX_PREPARED 8

struct db {
    struct lws_context *ctx;
    struct lws_vhost *vh;
    char *conninfo; /* owned */
    char name[32];
    const struct db_ops *ops;
    void *ud;
    PGconn *pg;      /* owned; NULL unless CONNECTING or UP */
    struct lws *wsi; /* the adopted dup() of PQsocket(pg), closed by lws */
    int sock;        /* PQsocket(pg) when wsi was adopted */
    enum db_state state;
    PostgresPollingStatusType want; /* direction PQconnectPoll waits for */
    struct db_req *head, *tail;     /* queue; head is on the wire when inflight */
    int inflight;
    PGresult *res; /* first result of the query in flight */
    int attempt;   /* failed attempts since the last success */
    int retry_max_ms;
    lws_sorted_usec_list_t sul;            /* connect timeout, retry delay, or deferred failure */
    char fail[160];                        /* why a send failed, reported from the timer */
    struct soon kick;                      /* asks lws for POLLOUT from outside its callbacks */
    const char *prepared[DB_MAX_PREPARED]; /* statements this connection has */
    int nprepared;
    int preparing;              /* what is on the wire is the head's PQsendPrepare */
    struct db_req *urgent_tail; /* last db_query_urgent() request still queued, or NULL */
};

static int
db_has_prepared(const struct db *db, const char *stmt)
{
    for (int i = 0; i < db->nprepared; i++)
        if (db->prepared[i] == stmt)
            return 1;
    return 0;
}

static void db_connect(struct db *db);
static void db_lost(struct db *db, const char *why);
static void on_db_timer(lws_sorted_usec_list_t *sul);

static void
on_db_kick(struct soon *s)
{
    struct db *db = lws_container_of(s, struct db, kick);
    if (db->wsi)
        lws_callback_on_writable(db->wsi);
}

/*
 * Asks to be told when the socket is writable. lws forgets a request for
 * POLLOUT made on a raw file from inside its own writable callback, so the
 * request is made on the next loop turn.
 */
static void
db_want_write(struct db *db)
{
    soon_add(&db->kick, on_db_kick);
}

static void
req_free(struct db_req *r)
{
    for (int i = 0; i < r->nparams; i++)
        free(r->params[i]);
    free(r->params);
    free(r->sql);
    free(r);
}

/* Answers every queued query with a NULL result (the connection is gone). */
static void
db_fail_all(struct db *db)
{
    struct db_req *q = db->head;
    db->head = db->tail = db->urgent_tail = NULL;
    while (q) {
        struct db_req *next = q->next;
        if (q->cb)
            q->cb(db, NULL, q->ud);
        req_free(q);
        q = next;
    }
}

/* Stops watching the current socket; lws closes the dup() when it gets to it. */
static void
db_drop_wsi(struct db *db)
{
    adopt_release(db->wsi);
    db->wsi = NULL;
}

/* Adopts a dup() of libpq's socket unless the one already watched is current. */
static int
db_adopt(struct db *db)
{
    int fd = PQsocket(db->pg);
    if (fd < 0)
        return -1;
    if (db->wsi && fd == db->sock)
        return 0;
    db_drop_wsi(db);
    if (adopt_dup(db->vh, fd, db_protocol.name, db, &db->wsi))
        return -1;
    db->sock = fd;
    return 0;
}

/*
 * A send failed: tear down from the timer, not here, so that no callback
 * runs inside db_query().
 */
static void
db_fail_later(struct db *db)
{
    snprintf(db->fail, sizeof(db->fail), "%s", PQerrorMessage(db->pg));
    db->inflight = 1; /* nothing more is sent until the teardown */
    lws_sul_schedule(db->ctx, 0, &db->sul, on_db_timer, 1);
}

/* Sends the head of the queue when nothing is on the wire. */
static void
db_pump(struct db *db)
{
    if (db->state != DB_UP || db->inflight || !db->head)
        return;
    struct db_req *r = db->head;
    const char *const *params = (const char *const *)r->params;
    int ok;
    if (r->stmt && db_has_prepared(db, r->stmt))
        ok = PQsendQueryPrepared(db->pg, r->stmt, r->nparams, params, NULL, NULL, 0);
    else if (r->stmt && db->nprepared < DB_MAX_PREPARED) {
        ok = PQsendPrepare(db->pg, r->stmt, r->sql, r->nparams, NULL);
        db->preparing = 1;
    } else
        ok = PQsendQueryParams(db->pg, r->sql, r->nparams, NULL, params, NULL, NULL, 0);
    if (!ok) {
        db_fail_later(db);
        return;
    }
    db->inflight = 1;
    int f = PQflush(db->pg);
    if (f < 0)
        db_fail_later(db);
    else if (f > 0)
        db_want_write(db);
}

/* Hands finished results to their callbacks, then passes notifications up. */
static void
db_drain(struct db *db)
{
    while (db->state == DB_UP && db->inflight && !PQisBusy(db->pg)) {
        PGresult *r = PQgetResult(db->pg);
        if (r) {
            if (!db->res)
                db->res = r;
            else
                PQclear(r);
            continue;
        }
        struct db_req *req = db->head;
        db->inflight = 0;
        PGresult *res = db->res;
        db->res = NULL;
        if (db->preparing) {
            /* The statement is ready: send the query itself. A failed
             * prepare is the query's result. */
            db->preparing = 0;
            if (PQresultStatus(res) == PGRES_COMMAND_OK) {
                db->prepared[db->nprepared++] = req->stmt;
                PQclear(res);
                db_pump(db);
                continue;
            }
        }
        db->head = req->next;
        if (!db->head)
            db->tail = NULL;
        if (db->urgent_tail == req)
            db->urgent_tail = NULL;
        if (req->cb)
            req->cb(db, res, req->ud);
        PQclear(res);
        req_free(req);
        db_pump(db);
    }
    PGnotify *n;
    while (db->state == DB_UP && (n = PQnotifies(db->pg))) {
        if (db->ops->on_notify)
            db->ops->on_notify(db, db->ud, n->relname, n->extra);
        PQfreemem(n);
    }
    if (db->state == DB_UP && PQstatus(db->pg) == CONNECTION_BAD)
        db_lost(db, PQerrorMessage(db->pg));
}

static void
db_up(struct db *db)
{
    lws_sul_cancel(&db->sul);
    if (PQsetnonblocking(db->pg, 1)) {
        db_lost(db, PQerrorMessage(db->pg));
        return;
    }
    db->state = DB_UP;
    db->attempt = 0;
    log_info("db", "%s: connected (server %d)", db->name, PQserverVersion(db->pg));
    if (db->ops->on_up)
        db->ops->on_up(db, db->ud);
    db_pump(db);
}

/* One PQconnectPoll step, taken when the socket is ready as libpq asked. */
static void
db_connect_step(struct db *db)
{
    PostgresPollingStatusType st = PQconnectPoll(db->pg);
    switch (st) {
    case PGRES_POLLING_OK:
        if (db_adopt(db))
            db_lost(db, "cannot watch the database socket");
        else
            db_up(db);
        return;
    case PGRES_POLLING_READING:
    case PGRES_POLLING_WRITING:
        db->want = st;
        if (db_adopt(db)) {
            db_lost(db, "cannot watch the database socket");
            return;
        }
        if (st == PGRES_POLLING_WRITING)
            db_want_write(db);
        return;
    default:
        db_lost(db, PQerrorMessage(db->pg));
        return;
    }
}

static void
on_db_timer(lws_sorted_usec_list_t *sul)
{
    struct db *db = lws_container_of(sul, struct db, sul);
    if (db->state == DB_CONNECTING)
        db_lost(db, "connection attempt timed out");
    else if (db->state == DB_UP)
        db_lost(db, db->fail);
    else if (db->state == DB_RETRY)
        db_connect(db);
}

static void
db_connect(struct db *db)
{
    /* Our defaults first: the user's conninfo (expanded from dbname) overrides them. */
    static const char *const keys[] = {"application_name",
                                       "keepalives",
                                       "keepalives_idle",
                                       "keepalives_interval",
                                       "keepalives_count",
                                       "dbname",
                                       NULL};
    /* "armonia-hub listener": pg_stat_activity tells the sessions apart. */
    char app[64];
    snprintf(app, sizeof(app), "armonia-hub %s", db->name);
    const char *vals[] = {app, "1", "10", "5", "3", db->conninfo, NULL};
    db->state = DB_CONNECTING;
    db->pg = PQconnectStartParams(keys, vals, 1);
    if (!db->pg || PQstatus(db->pg) == CONNECTION_BAD) {
        db_lost(db, db->pg ? PQerrorMessage(db->pg) : "out of memory");
        return;
    }
    lws_sul_schedule(db->ctx, 0, &db->sul, on_db_timer, (lws_usec_t)DB_CONNECT_TIMEOUT_MS * 1000);
    db->want = PGRES_POLLING_WRITING;
    if (db_adopt(db)) {
        db_lost(db, "cannot watch the database socket");
        return;
    }
    db_want_write(db);
}

/*
 * Tears the connection down after a failure, fails every queued query,
 * tells the owner, and schedules the next attempt.
 */
static void
db_lost(struct db *db, const char *why)
{
    char reason[256];
    snprintf(reason, sizeof(reason), "%s", why && *why ? why : "connection lost");
    reason[strcspn(reason, "\r\n")] = '\0';
    enum db_state was = db->state;
    db_drop_wsi(db);
    if (db->res) {
        PQclear(db->res);
        db->res = NULL;
    }
    if (db->pg) {
        PQfinish(db->pg);
        db->pg = NULL;
    }
    db->state = DB_RETRY;
    db->inflight = 0;
    db->preparing = 0;
    db->nprepared = 0; /* a new session has none */
    db_fail_all(db);
    int delay = DB_RETRY_BASE_MS << (db->attempt < 16 ? db->attempt : 16);
    if (delay > db->retry_max_ms || delay <= 0)
        delay = db->retry_max_ms;
    delay = delay / 2 + (int)(random() % (delay / 2 + 1)); /* jitter: 50-100 % */
    db->attempt++;
    if (was == DB_UP || db->attempt == 1)
        log_warn("db", "%s: %s; retrying in %d ms", db->name, reason, delay);
    else
        log_info("db", "%s: attempt %d failed: %s; retrying in %d ms", db->name, db->attempt,
                 reason, delay);
    if (db->ops->on_down)
        db->ops->on_down(db, db->ud, reason);
    if (db->state == DB_RETRY)
        lws_sul_schedule(db->ctx, 0, &db->sul, on_db_timer, (lws_usec_t)delay * 1000);
}

static int
on_db_event(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    struct db *db = lws_get_opaque_user_data(wsi);
    if (!db || db->wsi != wsi)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_RAW_RX_FILE:
        if (db->state == DB_CONNECTING) {
            if (db->want == PGRES_POLLING_READING)
                db_connect_step(db);
        } else if (db->state == DB_UP) {
            if (!PQconsumeInput(db->pg))
                db_lost(db, PQerrorMessage(db->pg));
            else
                db_drain(db);
        }
        break;
    case LWS_CALLBACK_RAW_WRITEABLE_FILE:
        if (db->state == DB_CONNECTING) {
            if (db->want == PGRES_POLLING_WRITING)
                db_connect_step(db);
        } else if (db->state == DB_UP) {
            int f = PQflush(db->pg);
            if (f < 0)
                db_lost(db, PQerrorMessage(db->pg));
            else if (f > 0)
                db_want_write(db);
        }
        break;
    case LWS_CALLBACK_RAW_CLOSE_FILE:
        db->wsi = NULL;
        if (db->state == DB_CONNECTING || db->state == DB_UP)
            db_lost(db, "database socket closed");
        break;
    default:
        break;
    }
    return 0;
}

const struct lws_protocols db_protocol = {
    .name = "armonia-pg",
    .callback = on_db_event,
};

struct db *
db_new(struct lws_context *ctx, struct lws_vhost *vh, const char *conninfo, const char *name,
       const struct db_ops *ops, void *ud, int retry_max_ms)
{
    struct db *db = calloc(1, sizeof(*db));
    if (!db)
        return NULL;
    db->conninfo = strdup(conninfo);
    if (!db->conninfo) {
        free(db);
        return NULL;
    }
    db->ctx = ctx;
    db->vh = vh;
    snprintf(db->name, sizeof(db->name), "%s", name);
    db->ops = ops;
    db->ud = ud;
    db->retry_max_ms = retry_max_ms > DB_RETRY_BASE_MS ? retry_max_ms : DB_RETRY_BASE_MS;
    db->sock = -1;
    return db;
}

void
db_start(struct db *db)
{
    if (db->state == DB_IDLE)
        db_connect(db);
}

struct db_req *
db_query(struct db *db, const char *sql, int nparams, const char *const *params, db_result_cb cb,
         void *ud)
{
    return db_query_prepared(db, NULL, sql, nparams, params, cb, ud);
}

/*
 * Copies one query into a new request and queues it: at the back, or when
 * urgent behind the query on the wire and the urgent ones queued before it.
 */
static struct db_req *
db_enqueue(struct db *db, const char *stmt, const char *sql, int nparams, const char *const *params,
           db_result_cb cb, void *ud, int urgent)
{
    if (db->state != DB_UP)
        return NULL;
    struct db_req *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->cb = cb;
    r->ud = ud;
    r->stmt = stmt;
    r->sql = strdup(sql);
    r->params = nparams ? calloc((size_t)nparams, sizeof(char *)) : NULL;
    if (!r->sql || (nparams && !r->params))
        goto err;
    for (int i = 0; i < nparams; i++) {
        r->nparams = i + 1;
        if (params[i] && !(r->params[i] = strdup(params[i])))
            goto err;
    }
    struct db_req *after = NULL; /* r goes after this one; NULL: at the head */
    if (!urgent)
        after = db->tail;
    else if (db->urgent_tail)
        after = db->urgent_tail;
    else if (db->inflight)
        after = db->head;
    if (after) {
        r->next = after->next;
        after->next = r;
    } else {
        r->next = db->head;
        db->head = r;
    }
    if (!r->next)
        db->tail = r;
    if (urgent)
        db->urgent_tail = r;
    db_pump(db);
    return r;
err:
    req_free(r);
    return NULL;
}

struct db_req *
db_query_prepared(struct db *db, const char *stmt, const char *sql, int nparams,
                  const char *const *params, db_result_cb cb, void *ud)
{
    return db_enqueue(db, stmt, sql, nparams, params, cb, ud, 0);
}

struct db_req *
db_query_urgent(struct db *db, const char *sql, int nparams, const char *const *params,
                db_result_cb cb, void *ud)
{
    return db_enqueue(db, NULL, sql, nparams, params, cb, ud, 1);
}

void
db_cancel(struct db_req *req)
{
    if (req)
        req->cb = NULL;
}

bool
db_is_up(const struct db *db)
{
    return db->state == DB_UP;
}

void
db_free(struct db *db)
{
    if (!db)
        return;
    lws_sul_cancel(&db->sul);
    soon_cancel(&db->kick);
    db_drop_wsi(db);
    if (db->res)
        PQclear(db->res);
    if (db->pg)
        PQfinish(db->pg);
    db->state = DB_IDLE; /* a callback below cannot queue another query */
    db_fail_all(db);
    free(db->conninfo);
    free(db);
}
