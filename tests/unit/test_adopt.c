/*
 * test_adopt.c - unit tests for common/adopt.c: a foreign descriptor
 * watched by lws through a dup().
 *
 * What db.c and http.c rely on: readiness of the shared descriptor reaches
 * the protocol with the caller's pointer; after adopt_release() nothing
 * reaches the caller any more; and lws closing its copy (release, or the
 * context going) leaves the owner's descriptor open and working. A
 * descriptor that cannot be duplicated is refused with -errno.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "adopt.h"

/* What the protocol saw, for one test. */
static struct {
    int reads;     /* RAW_RX_FILE callbacks that carried our pointer */
    int strangers; /* RAW_RX_FILE callbacks with some other pointer */
    char last;     /* the byte read on the last one */
} seen;

static int
on_adopt_test(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    if (reason != LWS_CALLBACK_RAW_RX_FILE)
        return 0;
    void *opaque = lws_get_opaque_user_data(wsi);
    /* Drain the shared pipe through lws's copy, as a library would. */
    char c;
    if (read(lws_get_socket_fd(wsi), &c, 1) != 1)
        return 0;
    if (opaque == &seen) {
        seen.reads++;
        seen.last = c;
    } else {
        seen.strangers++;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"adopt-test", on_adopt_test, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static struct lws_context *
context_new(void)
{
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    return lws_create_context(&info);
}

/* A 5 ms timer, so each lws_service() returns soon even with nothing to read. */
static lws_sorted_usec_list_t tick;
static struct lws_context *tick_ctx;

static void
on_tick(lws_sorted_usec_list_t *sul)
{
    lws_sul_schedule(tick_ctx, 0, &tick, on_tick, 5 * LWS_US_PER_MS);
}

/* Turns the loop until *count reaches want or about a second passed. */
static void
serve(struct lws_context *ctx, const int *count, int want)
{
    tick_ctx = ctx;
    lws_sul_schedule(ctx, 0, &tick, on_tick, 5 * LWS_US_PER_MS);
    for (int i = 0; i < (count ? 200 : 10) && (!count || *count < want); i++)
        lws_service(ctx, 0);
    lws_sul_cancel(&tick);
}

/*
 * A context, a pipe p, and a dup() of its read end adopted with &seen as
 * the opaque pointer: the state every test starts from.
 */
static struct lws_context *
context_with_pipe(int p[2], struct lws **wsi)
{
    memset(&seen, 0, sizeof(seen));
    struct lws_context *ctx = context_new();
    assert_non_null(ctx);
    assert_int_equal(pipe(p), 0);
    assert_int_equal(
        adopt_dup(lws_get_vhost_by_name(ctx, "default"), p[0], "adopt-test", &seen, wsi), 0);
    return ctx;
}

/* The owner's read end is still open and reads byte (written now when write_it), then closes. */
static void
expect_owner_reads(int p[2], char byte, int write_it)
{
    assert_int_not_equal(fcntl(p[0], F_GETFD), -1);
    if (write_it)
        assert_int_equal(write(p[1], &byte, 1), 1);
    char c = 0;
    assert_int_equal(read(p[0], &c, 1), 1);
    assert_int_equal(c, byte);
    close(p[0]);
    close(p[1]);
}

static void
test_readiness_reaches_the_owner(void **state)
{
    int p[2];
    struct lws *wsi = NULL;
    struct lws_context *ctx = context_with_pipe(p, &wsi);
    assert_non_null(wsi);
    assert_int_not_equal(lws_get_socket_fd(wsi), p[0]);
    assert_int_equal(write(p[1], "a", 1), 1);
    serve(ctx, &seen.reads, 1);
    assert_int_equal(seen.reads, 1);
    assert_int_equal(seen.last, 'a');

    /* Released: lws closes its copy; the owner's descriptor still reads. */
    adopt_release(wsi);
    serve(ctx, NULL, 0);
    assert_int_equal(write(p[1], "b", 1), 1);
    serve(ctx, NULL, 0);
    assert_int_equal(seen.reads, 1);
    assert_int_equal(seen.strangers, 0);
    lws_context_destroy(ctx);
    expect_owner_reads(p, 'b', 0);
}

static void
test_context_end_leaves_owner_fd_open(void **state)
{
    int p[2];
    struct lws *wsi = NULL;
    struct lws_context *ctx = context_with_pipe(p, &wsi);
    lws_context_destroy(ctx);
    expect_owner_reads(p, 'c', 1);
}

static void
test_bad_descriptor_refused(void **state)
{
    struct lws_context *ctx = context_new();
    assert_non_null(ctx);
    struct lws *wsi = (struct lws *)&seen;
    assert_int_equal(
        adopt_dup(lws_get_vhost_by_name(ctx, "default"), -1, "adopt-test", &seen, &wsi), -EBADF);
    assert_null(wsi);
    adopt_release(NULL);
    lws_context_destroy(ctx);
}

int
main(void)
{
    lws_set_log_level(LLL_ERR, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readiness_reaches_the_owner),
        cmocka_unit_test(test_context_end_leaves_owner_fd_open),
        cmocka_unit_test(test_bad_descriptor_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
