/*
 * fuzz.h - what every libFuzzer target in fuzz/ shares: the entry point's
 * prototype, a check that aborts with the broken promise named (libFuzzer
 * then saves the input as a crash), and small readers that split one fuzz
 * input into the arguments of the function under test.
 *
 * Each target calls one parser of untrusted bytes the way the hub does and
 * checks what its header promises about the result, so a wrong answer is a
 * finding as much as a crash is.
 */
#ifndef FUZZ_FUZZ_H
#define FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts, naming the file, line and condition, when cond is false. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: broken promise: %s\n", __FILE__, __LINE__, #cond);             \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* An input being consumed front to back. */
struct fuzz_in {
    const uint8_t *p; /* borrowed from libFuzzer; next unread byte */
    size_t left;      /* bytes not read yet */
};

/* Returns the next byte, or 0 once the input is used up. */
static inline uint8_t
fuzz_byte(struct fuzz_in *in)
{
    if (in->left == 0)
        return 0;
    in->left--;
    return *in->p++;
}

/*
 * Returns a new NUL-terminated copy (free()) of the bytes up to the next
 * '\n', or of all the rest when there is none, and consumes them and the
 * '\n'. The copy may hold NUL bytes before its end; *len, when not NULL,
 * gets the number of bytes copied. Aborts when memory runs out.
 */
static inline char *
fuzz_line(struct fuzz_in *in, size_t *len)
{
    const uint8_t *nl = in->left ? memchr(in->p, '\n', in->left) : NULL;
    size_t n = nl ? (size_t)(nl - in->p) : in->left;
    char *s = malloc(n + 1);

    FUZZ_CHECK(s != NULL);
    if (n)
        memcpy(s, in->p, n);
    s[n] = '\0';
    in->p += n + (nl != NULL);
    in->left -= n + (nl != NULL);
    if (len)
        *len = n;
    return s;
}

/* Returns a new NUL-terminated copy (free()) of all the bytes left. */
static inline char *
fuzz_rest(struct fuzz_in *in, size_t *len)
{
    char *s = malloc(in->left + 1);

    FUZZ_CHECK(s != NULL);
    if (in->left)
        memcpy(s, in->p, in->left);
    s[in->left] = '\0';
    if (len)
        *len = in->left;
    in->p += in->left;
    in->left = 0;
    return s;
}

/* True when s[0..len) is well-formed UTF-8 (no overlong forms, surrogates
 * or code points past U+10FFFF): what PostgreSQL accepts in a text column. */
static inline int
fuzz_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;

    while (p < end) {
        unsigned c = *p++;
        int more;
        unsigned cp, min;
        if (c < 0x80)
            continue;
        if ((c & 0xE0) == 0xC0)
            more = 1, cp = c & 0x1F, min = 0x80;
        else if ((c & 0xF0) == 0xE0)
            more = 2, cp = c & 0x0F, min = 0x800;
        else if ((c & 0xF8) == 0xF0)
            more = 3, cp = c & 0x07, min = 0x10000;
        else
            return 0;
        if (end - p < more)
            return 0;
        while (more--) {
            if ((*p & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (*p++ & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
    }
    return 1;
}

#endif
