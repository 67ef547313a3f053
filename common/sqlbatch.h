/*
 * sqlbatch.h - rows waiting to be written to PostgreSQL many at a time, as
 * one array parameter per column.
 *
 * A writer that would otherwise pay one round trip per row (an ack, a
 * delivery outcome) queues its rows here and, when it decides to write,
 * takes the oldest ones as array literals (pgarray.h) for a single
 * statement such as "SELECT f($1::bigint[], $2::text[], ...)". The rows
 * stay queued until the owner reports how the statement went: written or
 * refused for good (sqlbatch_done(): they go), or never answered because
 * the connection went away (sqlbatch_retry(): they are first in line for
 * the next statement). So a database outage delays rows without losing
 * them, up to the queue's bound.
 *
 * This module sends nothing itself and knows no connection; its owner
 * issues the query, so the batching can be tested without a database.
 */
#ifndef COMMON_SQLBATCH_H
#define COMMON_SQLBATCH_H

#include <stddef.h>

/* Most columns a row may have. */
#define SQLBATCH_MAX_COLUMNS 8

struct sqlbatch;

/*
 * A queue of rows of `columns` values (1..SQLBATCH_MAX_COLUMNS). One
 * statement takes at most max_batch rows; at most max_pending rows wait
 * that are not being written (SIZE_MAX: no bound). Returns NULL on OOM or
 * a column count out of range.
 */
struct sqlbatch *sqlbatch_new(unsigned columns, size_t max_batch, size_t max_pending);

/*
 * Queues a copy of one row: values[k] for each column, NULL for an SQL
 * NULL. Returns 0; 1 when the queue was full and its oldest row not being
 * written was dropped to make room (the caller says so to the operator);
 * or -1 when memory ran out and the row was not queued.
 */
int sqlbatch_add(struct sqlbatch *b, const char *const *values);

/* Rows queued, those being written included. */
size_t sqlbatch_pending(const struct sqlbatch *b);

/* Rows of the statement in flight (0 when none is). */
size_t sqlbatch_inflight(const struct sqlbatch *b);

/*
 * Takes the oldest rows (up to max_batch) for one statement: sets lits[k]
 * to the array literal of column k (the caller frees each with free()),
 * and *null_columns to a mask whose bit k is set when column k is NULL in
 * every row taken. The rows are in flight from then on. Returns the number
 * of rows; 0 when none wait or a statement is already in flight (lits are
 * then NULL); -1 when memory ran out (nothing is in flight).
 */
long sqlbatch_take(struct sqlbatch *b, char **lits, unsigned *null_columns);

/* The statement in flight was written or refused for good: its rows go. */
void sqlbatch_done(struct sqlbatch *b);

/* The statement in flight never reached the database: its rows stay first. */
void sqlbatch_retry(struct sqlbatch *b);

/* Frees the queue and every row in it. NULL is ignored. */
void sqlbatch_free(struct sqlbatch *b);

#endif
