/*
 * sqlbatch.c - rows queued for batched statements (see sqlbatch.h).
 */
#include "sqlbatch.h"
#include "pgarray.h"

#include <stdlib.h>
#include <string.h>

/* One queued row: its values as consecutive NUL-terminated strings. */
struct sqlbatch_row {
    char *values;   /* owned; one allocation, "" in the place of a NULL */
    unsigned nulls; /* bit k set: column k is NULL */
};

struct sqlbatch {
    struct sqlbatch_row *rows; /* owned; oldest first, the first `inflight` being written */
    size_t len;                /* rows queued */
    size_t cap;                /* rows allocated */
    size_t inflight;           /* rows of the statement in flight */
    size_t max_batch;          /* rows per statement at most */
    size_t max_pending;        /* rows waiting (not in flight) at most */
    unsigned columns;          /* values per row */
};

struct sqlbatch *
sqlbatch_new(unsigned columns, size_t max_batch, size_t max_pending)
{
    if (!columns || columns > SQLBATCH_MAX_COLUMNS || !max_batch || !max_pending)
        return NULL;
    struct sqlbatch *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->columns = columns;
    b->max_batch = max_batch;
    b->max_pending = max_pending;
    return b;
}

/* Frees rows [from, from + n) and closes the gap. */
static void
sqlbatch_drop(struct sqlbatch *b, size_t from, size_t n)
{
    if (!n)
        return; /* rows may still be NULL, which memmove() must not see */
    for (size_t i = from; i < from + n; i++)
        free(b->rows[i].values);
    memmove(b->rows + from, b->rows + from + n, (b->len - from - n) * sizeof(*b->rows));
    b->len -= n;
}

int
sqlbatch_add(struct sqlbatch *b, const char *const *values)
{
    int dropped = 0;
    if (b->len - b->inflight >= b->max_pending) {
        sqlbatch_drop(b, b->inflight, 1);
        dropped = 1;
    }
    if (b->len == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        struct sqlbatch_row *rows = realloc(b->rows, cap * sizeof(*rows));
        if (!rows)
            return -1;
        b->rows = rows;
        b->cap = cap;
    }
    size_t size = 0;
    for (unsigned k = 0; k < b->columns; k++)
        size += (values[k] ? strlen(values[k]) : 0) + 1;
    struct sqlbatch_row r = {malloc(size), 0};
    if (!r.values)
        return -1;
    char *p = r.values;
    for (unsigned k = 0; k < b->columns; k++) {
        const char *v = values[k] ? values[k] : "";
        size_t l = strlen(v) + 1;
        memcpy(p, v, l);
        p += l;
        if (!values[k])
            r.nulls |= 1u << k;
    }
    b->rows[b->len++] = r;
    return dropped;
}

size_t
sqlbatch_pending(const struct sqlbatch *b)
{
    return b ? b->len : 0;
}

size_t
sqlbatch_inflight(const struct sqlbatch *b)
{
    return b ? b->inflight : 0;
}

long
sqlbatch_take(struct sqlbatch *b, char **lits, unsigned *null_columns)
{
    for (unsigned k = 0; k < b->columns; k++)
        lits[k] = NULL;
    *null_columns = 0;
    if (b->inflight || !b->len)
        return 0;
    size_t n = b->len < b->max_batch ? b->len : b->max_batch;
    struct pgarray a[SQLBATCH_MAX_COLUMNS];
    for (unsigned k = 0; k < b->columns; k++)
        pgarray_init(&a[k]);
    unsigned all_null = (1u << b->columns) - 1;
    for (size_t i = 0; i < n; i++) {
        const char *v = b->rows[i].values;
        for (unsigned k = 0; k < b->columns; k++) {
            pgarray_add(&a[k], b->rows[i].nulls & 1u << k ? NULL : v);
            v += strlen(v) + 1;
        }
        all_null &= b->rows[i].nulls;
    }
    int ok = 1;
    for (unsigned k = 0; k < b->columns; k++)
        if (!(lits[k] = pgarray_finish(&a[k])))
            ok = 0;
    if (!ok) {
        for (unsigned k = 0; k < b->columns; k++) {
            free(lits[k]);
            lits[k] = NULL;
        }
        return -1;
    }
    *null_columns = all_null;
    b->inflight = n;
    return (long)n;
}

void
sqlbatch_done(struct sqlbatch *b)
{
    sqlbatch_drop(b, 0, b->inflight);
    b->inflight = 0;
}

void
sqlbatch_retry(struct sqlbatch *b)
{
    b->inflight = 0;
}

void
sqlbatch_free(struct sqlbatch *b)
{
    if (!b)
        return;
    sqlbatch_drop(b, 0, b->len);
    free(b->rows);
    free(b);
}
