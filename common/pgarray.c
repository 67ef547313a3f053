/*
 * pgarray.c - PostgreSQL array literals that always escape (see pgarray.h).
 */
#include "pgarray.h"

#include <stdlib.h>
#include <string.h>

void
pgarray_init(struct pgarray *a)
{
    *a = (struct pgarray){0};
}

/* Makes room for need more bytes; returns 0, or -1 and marks a on failure. */
static int
pgarray_reserve(struct pgarray *a, size_t need)
{
    if (a->oom)
        return -1;
    if (a->len + need <= a->cap)
        return 0;
    size_t cap = a->cap ? a->cap : 64;
    while (cap < a->len + need)
        cap *= 2;
    char *p = realloc(a->buf, cap);
    if (!p) {
        a->oom = 1;
        return -1;
    }
    a->buf = p;
    a->cap = cap;
    return 0;
}

void
pgarray_add(struct pgarray *a, const char *s)
{
    /* Worst case: an opening brace or comma, two quotes, every byte escaped. */
    size_t need = s ? 2 * strlen(s) + 3 : 5;
    if (pgarray_reserve(a, need))
        return;
    a->buf[a->len++] = a->n++ ? ',' : '{';
    if (!s) {
        memcpy(a->buf + a->len, "NULL", 4);
        a->len += 4;
        return;
    }
    a->buf[a->len++] = '"';
    for (const char *q = s; *q; q++) {
        if (*q == '"' || *q == '\\')
            a->buf[a->len++] = '\\';
        a->buf[a->len++] = *q;
    }
    a->buf[a->len++] = '"';
}

char *
pgarray_finish(struct pgarray *a)
{
    /* "{}" when empty, otherwise the closing brace; and the terminator. */
    char *lit = NULL;
    if (!pgarray_reserve(a, 3)) {
        if (!a->n)
            a->buf[a->len++] = '{';
        a->buf[a->len++] = '}';
        a->buf[a->len] = '\0';
        lit = a->buf;
        a->buf = NULL;
    }
    pgarray_discard(a);
    return lit;
}

void
pgarray_discard(struct pgarray *a)
{
    free(a->buf);
    pgarray_init(a);
}

char *
pgarray_text(const char *const *items, size_t n)
{
    struct pgarray a;
    pgarray_init(&a);
    for (size_t i = 0; i < n; i++)
        pgarray_add(&a, items[i]);
    return pgarray_finish(&a);
}
