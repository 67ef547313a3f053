/*
 * pgarray.h - PostgreSQL array literals ("{...}") for array parameters of
 * queries sent as text.
 *
 * Every element is written in double quotes with its double quotes and
 * backslashes escaped, whatever it holds, so any text reads back as itself
 * (commas, braces, whitespace and the word NULL included); a NULL pointer
 * becomes an SQL NULL element. The same literal serves text[], bigint[] and
 * int[] parameters: PostgreSQL parses a quoted element by the array's type.
 */
#ifndef COMMON_PGARRAY_H
#define COMMON_PGARRAY_H

#include <stddef.h>

/* A literal being built; zero it (or pgarray_init()) before the first add. */
struct pgarray {
    char *buf;  /* owned; the text so far, without the closing brace */
    size_t len; /* bytes in buf */
    size_t cap; /* bytes allocated at buf */
    size_t n;   /* elements added */
    int oom;    /* an allocation failed: pgarray_finish() returns NULL */
};

void pgarray_init(struct pgarray *a);

/* Appends s (NULL for an SQL NULL). A failure is remembered, not returned. */
void pgarray_add(struct pgarray *a, const char *s);

/*
 * Closes the literal and hands it over: returns a string the caller frees,
 * or NULL when memory ran out on the way. a is empty again afterwards.
 */
char *pgarray_finish(struct pgarray *a);

/* Frees what a holds without producing a literal. */
void pgarray_discard(struct pgarray *a);

/* The literal of the n strings in items ("{}" when n is 0), or NULL on OOM. */
char *pgarray_text(const char *const *items, size_t n);

#endif
