/*
 * db.h - one non-blocking PostgreSQL connection inside the lws event loop.
 *
 * The libpq socket is never given to lws directly: lws closes an adopted
 * descriptor together with its wsi, and libpq may replace its socket while
 * connecting. So a dup() of the socket is adopted as a raw file, and a new
 * dup is adopted whenever PQsocket() changes. Queries are queued and sent
 * one at a time; notifications are passed up as they arrive. When the
 * connection is lost, every queued query gets its callback with a NULL
 * result, ops->on_down runs, and the connection is re-established with
 * capped exponential backoff and jitter.
 */
#ifndef HUB_DB_H
#define HUB_DB_H

#include <stdbool.h>
#include <libpq-fe.h>
#include <libwebsockets.h>

struct db;
struct db_req;

struct db_ops {
    /* The connection is established; queries may be queued. */
    void (*on_up)(struct db *db, void *ud);
    /* The connection was lost or could not be made; why is a short text. */
    void (*on_down)(struct db *db, void *ud, const char *why);
    /* A NOTIFY arrived on a channel this connection LISTENs to. */
    void (*on_notify)(struct db *db, void *ud, const char *channel, const char *payload);
};

/*
 * Called once per query with its result (PGRES_TUPLES_OK, PGRES_COMMAND_OK
 * or an error result, which the callee inspects), or with res == NULL when
 * the connection was lost first. The result is freed after the call.
 */
typedef void (*db_result_cb)(struct db *db, const PGresult *res, void *ud);

/* The lws protocol that carries the adopted sockets; add it to the vhost. */
extern const struct lws_protocols db_protocol;

/*
 * Creates a connection object for conninfo (a libpq string or URI). name
 * appears in log lines. Nothing happens until db_start(). Returns NULL on
 * OOM.
 */
struct db *db_new(struct lws_context *ctx, struct lws_vhost *vh, const char *conninfo,
                  const char *name, const struct db_ops *ops, void *ud, int retry_max_ms);

/* Begins connecting (and reconnecting after every loss). */
void db_start(struct db *db);

/*
 * Queues one single-statement query with text parameters (copied). The
 * callback runs from the event loop, never from inside db_query(). Returns
 * a handle usable with db_cancel() until the callback has run, or NULL when
 * the connection is down or memory ran out (the callback will not run).
 */
struct db_req *db_query(struct db *db, const char *sql, int nparams, const char *const *params,
                        db_result_cb cb, void *ud);

/*
 * db_query() of a statement the connection prepares once (PQsendPrepare,
 * the first time it is queued after each connect) and then only executes:
 * no parsing or planning per call once PostgreSQL settles on a generic
 * plan. stmt names it and must be a string constant (compared by address),
 * one per SQL text. A failed prepare is the query's result.
 */
struct db_req *db_query_prepared(struct db *db, const char *stmt, const char *sql, int nparams,
                                 const char *const *params, db_result_cb cb, void *ud);

/*
 * db_query() that goes before every query not yet sent (after the one on
 * the wire and earlier urgent ones): for work a client waits on, such as a
 * resume, that must not queue behind bulk requests.
 */
struct db_req *db_query_urgent(struct db *db, const char *sql, int nparams,
                               const char *const *params, db_result_cb cb, void *ud);

/* The callback of req will not run; the query itself still completes. */
void db_cancel(struct db_req *req);

/* True while the connection is established. */
bool db_is_up(const struct db *db);

/* Closes the connection and frees everything; pending callbacks get NULL. */
void db_free(struct db *db);

#endif
