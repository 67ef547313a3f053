/*
 * test_buf.c - unit tests for hub/buf.c, the shared outbound buffers.
 *
 * What the writer relies on: the payload starts LWS_PRE bytes into the
 * allocation so lws_write() can use the headroom, the text/binary flag is
 * kept, and a buffer lives exactly as long as its last reference. Frees are
 * checked by running this under AddressSanitizer or valgrind.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"

static void
test_new_has_headroom_and_one_ref(void **state)
{
    struct buf *b = buf_new(5, 0);

    assert_non_null(b);
    assert_int_equal(b->refs, 1);
    assert_int_equal(b->len, 5);
    assert_int_equal(b->binary, 0);
    assert_ptr_equal(buf_data(b), b->mem + LWS_PRE);
    memset(b->mem, 0xaa, LWS_PRE);
    memcpy(buf_data(b), "hello", 5);
    assert_memory_equal(b->mem + LWS_PRE, "hello", 5);
    buf_unref(b);
}

static void
test_binary_flag(void **state)
{
    struct buf *bin = buf_new(3, 1);
    struct buf *other = buf_new(3, 7);

    assert_non_null(bin);
    assert_non_null(other);
    assert_int_equal(bin->binary, 1);
    assert_int_equal(other->binary, 1);
    buf_unref(bin);
    buf_unref(other);
}

static void
test_empty_payload(void **state)
{
    struct buf *b = buf_new(0, 0);

    assert_non_null(b);
    assert_int_equal(b->len, 0);
    assert_ptr_equal(buf_data(b), b->mem + LWS_PRE);
    buf_unref(b);
}

static void
test_oversized_fails(void **state)
{
    assert_null(buf_new(SIZE_MAX, 0));
    assert_null(buf_new(SIZE_MAX - LWS_PRE, 1));
}

/* One encoded frame queued on three sockets: each queue drops its own reference. */
static void
test_shared_until_last_unref(void **state)
{
    struct buf *b = buf_new(4, 1);
    struct buf *q1, *q2, *q3;

    assert_non_null(b);
    memcpy(buf_data(b), "\x81\xa1\x61\x01", 4);
    q1 = buf_ref(b);
    q2 = buf_ref(b);
    q3 = buf_ref(b);
    assert_ptr_equal(q1, b);
    assert_ptr_equal(q2, b);
    assert_ptr_equal(q3, b);
    assert_int_equal(b->refs, 4);

    buf_unref(b);
    assert_int_equal(q1->refs, 3);
    buf_unref(q2);
    buf_unref(q1);
    assert_int_equal(q3->refs, 1);
    assert_memory_equal(buf_data(q3), "\x81\xa1\x61\x01", 4);
    buf_unref(q3);
}

static void
test_unref_null_is_ignored(void **state)
{
    buf_unref(NULL);
}

/* Server frame headers at each length boundary of RFC 6455 §5.2. */
static void
test_ws_header_lengths(void **state)
{
    unsigned char h[10];
    assert_int_equal(ws_header(h, 0, 0), 2);
    assert_memory_equal(h, "\x81\x00", 2);
    assert_int_equal(ws_header(h, 125, 1), 2);
    assert_memory_equal(h, "\x82\x7d", 2);
    assert_int_equal(ws_header_len(126), 4);
    assert_int_equal(ws_header(h, 126, 0), 4);
    assert_memory_equal(h, "\x81\x7e\x00\x7e", 4);
    assert_int_equal(ws_header(h, 65535, 0), 4);
    assert_memory_equal(h, "\x81\x7e\xff\xff", 4);
    assert_int_equal(ws_header_len(65536), 10);
    assert_int_equal(ws_header(h, 65536, 1), 10);
    assert_memory_equal(h, "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
    /* The longest header fits in a buffer's headroom. */
    assert_true(ws_header_len(SIZE_MAX) <= LWS_PRE);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_has_headroom_and_one_ref),
        cmocka_unit_test(test_binary_flag),
        cmocka_unit_test(test_empty_payload),
        cmocka_unit_test(test_oversized_fails),
        cmocka_unit_test(test_shared_until_last_unref),
        cmocka_unit_test(test_unref_null_is_ignored),
        cmocka_unit_test(test_ws_header_lengths),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
