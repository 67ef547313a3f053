/*
 * test_log.c - unit tests for common/log.c: the JSON line format (every
 * line one object that a JSON parser reads back, with the message and
 * fields intact whatever bytes they hold), the text format, levels, and
 * the cuts made to over-long lines.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* Runs fn with stderr sent to a temporary file; returns what it wrote
 * (caller frees). */
static char *
capture(void (*fn)(void))
{
    fflush(stderr);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fileno(tmp), STDERR_FILENO), STDERR_FILENO);
    fn();
    fflush(stderr);
    assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);
    long n = ftell(tmp);
    if (n < 0) {
        fseek(tmp, 0, SEEK_END);
        n = ftell(tmp);
    }
    char *out = calloc(1, (size_t)n + 1);
    assert_non_null(out);
    rewind(tmp);
    assert_int_equal(fread(out, 1, (size_t)n, tmp), (size_t)n);
    fclose(tmp);
    return out;
}

/* Parses the one line of text (it must end in exactly one newline). */
static json_t *
one_object(const char *text)
{
    size_t len = strlen(text);
    assert_true(len > 1);
    assert_int_equal(text[len - 1], '\n');
    assert_null(memchr(text, '\n', len - 1));
    json_error_t err;
    json_t *o = json_loadb(text, len, 0, &err);
    if (!o)
        fail_msg("not JSON (%s): %s", err.text, text);
    assert_true(json_is_object(o));
    return o;
}

static void
write_plain(void)
{
    log_set_format(LOG_FORMAT_JSON);
    log_set_worker(-1);
    log_info("conn", "session %s: closed", "abc");
}

static void
test_log_json_members(void **state)
{
    (void)state;
    char *out = capture(write_plain);
    json_t *o = one_object(out);
    assert_string_equal(json_string_value(json_object_get(o, "level")), "info");
    assert_string_equal(json_string_value(json_object_get(o, "module")), "conn");
    assert_string_equal(json_string_value(json_object_get(o, "message")), "session abc: closed");
    const char *t = json_string_value(json_object_get(o, "time"));
    assert_non_null(t);
    /* 2026-12-07T01:02:03.456Z */
    assert_int_equal(strlen(t), 24);
    assert_int_equal(t[10], 'T');
    assert_int_equal(t[23], 'Z');
    assert_null(json_object_get(o, "worker"));
    assert_null(json_object_get(o, "fields"));
    json_decref(o);
    free(out);
}

static void
write_fields(void)
{
    log_set_format(LOG_FORMAT_JSON);
    log_set_worker(3);
    struct log_field f[] = {LOG_STR("session", "s-1"), LOG_NUM("code", 4008),
                            LOG_STR("odd", "q\"b\\c\n\t\x01\x7f")};
    log_fields(LOG_WARN, "conn", f, 3, "closing %d", 4008);
    log_set_worker(-1);
}

static void
test_log_json_fields_and_worker(void **state)
{
    (void)state;
    char *out = capture(write_fields);
    json_t *o = one_object(out);
    assert_string_equal(json_string_value(json_object_get(o, "level")), "warn");
    assert_int_equal(json_integer_value(json_object_get(o, "worker")), 3);
    json_t *f = json_object_get(o, "fields");
    assert_true(json_is_object(f));
    assert_string_equal(json_string_value(json_object_get(f, "session")), "s-1");
    assert_int_equal(json_integer_value(json_object_get(f, "code")), 4008);
    assert_string_equal(json_string_value(json_object_get(f, "odd")), "q\"b\\c\n\t\x01\x7f");
    json_decref(o);
    free(out);
}

/* Bytes that are not UTF-8 (a client's bad data quoted in a message) come
 * out as U+FFFD, valid multi-byte characters unchanged. */
static void
write_bad_utf8(void)
{
    log_set_format(LOG_FORMAT_JSON);
    log_info("ws", "a\xff b\xc3\xa9 c\xed\xa0\x80 d\xf0\x9f\x98\x80 e\xc0\xaf f\xe2\x82");
}

static void
test_log_json_invalid_utf8(void **state)
{
    (void)state;
    char *out = capture(write_bad_utf8);
    json_t *o = one_object(out);
    assert_string_equal(json_string_value(json_object_get(o, "message")),
                        "a\xef\xbf\xbd b\xc3\xa9 c\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd "
                        "d\xf0\x9f\x98\x80 e\xef\xbf\xbd\xef\xbf\xbd f\xef\xbf\xbd\xef\xbf\xbd");
    json_decref(o);
    free(out);
}

/* A message far longer than a line is cut, and the line is still one JSON
 * object; a field that does not fit is left out and the line says so. */
static void
write_long(void)
{
    log_set_format(LOG_FORMAT_JSON);
    static char big[8000];
    memset(big, '"', sizeof(big) - 1);
    log_info("x", "%s", big);
    struct log_field f[] = {LOG_NUM("n", 1), LOG_STR("big", big)};
    log_fields(LOG_INFO, "x", f, 2, "short");
}

static void
test_log_json_long_lines(void **state)
{
    (void)state;
    char *out = capture(write_long);
    char *second = strchr(out, '\n') + 1;
    char first[8192];
    memcpy(first, out, (size_t)(second - out));
    first[second - out] = '\0';
    json_t *o = one_object(first);
    const char *m = json_string_value(json_object_get(o, "message"));
    assert_true(strlen(m) > 500 && strlen(m) < 1024);
    json_decref(o);
    o = one_object(second);
    json_t *f = json_object_get(o, "fields");
    assert_int_equal(json_integer_value(json_object_get(f, "n")), 1);
    assert_null(json_object_get(f, "big"));
    assert_true(json_is_true(json_object_get(o, "truncated")));
    json_decref(o);
    free(out);
}

static void
write_text(void)
{
    log_set_format(LOG_FORMAT_TEXT);
    log_set_worker(2);
    struct log_field f[] = {LOG_NUM("code", 1001)};
    log_fields(LOG_ERR, "supervisor", f, 1, "worker %d gone\n", 1);
    log_set_worker(-1);
    log_set_level(LOG_WARN);
    log_info("x", "not shown");
    log_debug("x", "not shown");
    log_set_level(LOG_INFO);
}

static void
test_log_text(void **state)
{
    (void)state;
    char *out = capture(write_text);
    /* 2026-12-07T01:02:03.456Z error [w2] supervisor: worker 1 gone */
    const char *rest = out + 25;
    assert_string_equal(rest, "error [w2] supervisor: worker 1 gone\n");
    free(out);
}

static void
test_log_parse(void **state)
{
    (void)state;
    assert_int_equal(log_format_parse("json"), LOG_FORMAT_JSON);
    assert_int_equal(log_format_parse("TEXT"), LOG_FORMAT_TEXT);
    assert_int_equal(log_format_parse("yaml"), -1);
    assert_int_equal(log_level_parse("Debug"), LOG_DEBUG);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_json_members),
        cmocka_unit_test(test_log_json_fields_and_worker),
        cmocka_unit_test(test_log_json_invalid_utf8),
        cmocka_unit_test(test_log_json_long_lines),
        cmocka_unit_test(test_log_text),
        cmocka_unit_test(test_log_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
