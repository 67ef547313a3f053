/*
 * test_peer.c - unit tests for hub/peer.c: which proxies are trusted,
 * which forwarded address is logged for a client behind them, and the
 * per-address caps' table.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "peer.h"

static struct peer_net nets[PEER_MAX_NETS];

/* Parses list into nets and returns how many entries it held. */
static int
parse(const char *list)
{
    const char *why = NULL;
    int n = peer_nets_parse(list, nets, PEER_MAX_NETS, &why);
    if (n < 0)
        assert_non_null(why);
    return n;
}

static void
test_parse_and_match(void **state)
{
    int n = parse("10.0.0.0/8, 192.168.1.5 ::1,fd00::/8  ");
    assert_int_equal(n, 4);
    assert_true(peer_in_nets("10.1.2.3", nets, (size_t)n));
    assert_true(peer_in_nets("192.168.1.5", nets, (size_t)n));
    assert_false(peer_in_nets("192.168.1.6", nets, (size_t)n));
    assert_false(peer_in_nets("11.0.0.1", nets, (size_t)n));
    assert_true(peer_in_nets("::1", nets, (size_t)n));
    assert_true(peer_in_nets("fd12:3456::9", nets, (size_t)n));
    assert_false(peer_in_nets("fe80::1", nets, (size_t)n));
    /* An IPv4 client seen on an IPv6 socket. */
    assert_true(peer_in_nets("::ffff:10.9.8.7", nets, (size_t)n));
    assert_false(peer_in_nets("not-an-address", nets, (size_t)n));
    assert_false(peer_in_nets(NULL, nets, (size_t)n));
}

static void
test_parse_prefixes(void **state)
{
    int n = parse("172.16.0.0/12,0.0.0.0/0");
    assert_int_equal(n, 2);
    assert_true(peer_in_nets("172.31.255.255", nets, 1));
    assert_false(peer_in_nets("172.32.0.0", nets, 1));
    assert_true(peer_in_nets("8.8.8.8", nets, 2));
    assert_int_equal(parse("::ffff:10.0.0.0/104"), 1);
    assert_true(peer_in_nets("10.200.0.1", nets, 1));
    assert_false(peer_in_nets("11.0.0.1", nets, 1));
    assert_int_equal(parse(""), 0);
}

static void
test_parse_rejects(void **state)
{
    assert_int_equal(parse("10.0.0.0/33"), -1);
    assert_int_equal(parse("::/129"), -1);
    assert_int_equal(parse("10.0.0.0/"), -1);
    assert_int_equal(parse("10.0.0.0/-1"), -1);
    assert_int_equal(parse("10.0.0.0/8x"), -1);
    assert_int_equal(parse("proxy.example.com"), -1);
    assert_int_equal(parse("10.0.0.300"), -1);
    assert_int_equal(parse("::ffff:10.0.0.0/8"), -1);
    char many[PEER_MAX_NETS * 12 + 16] = "";
    for (int i = 0; i <= PEER_MAX_NETS; i++)
        strcat(many, "10.0.0.1,");
    assert_int_equal(parse(many), -1);
}

static void
test_forwarded_walks_from_the_right(void **state)
{
    char out[PEER_ADDR_LEN];
    int n = parse("10.0.0.0/8");

    /* The client may write anything on the left; the proxies append on the right. */
    assert_int_equal(peer_forwarded("1.1.1.1, 198.51.100.2, 10.0.0.5", nets, (size_t)n, out), 0);
    assert_string_equal(out, "198.51.100.2");
    assert_int_equal(peer_forwarded("198.51.100.2", nets, (size_t)n, out), 0);
    assert_string_equal(out, "198.51.100.2");
    /* Every hop a trusted proxy: the leftmost is the client. */
    assert_int_equal(peer_forwarded("10.1.1.1,10.2.2.2", nets, (size_t)n, out), 0);
    assert_string_equal(out, "10.1.1.1");
    /* Canonical text, whatever was written. */
    assert_int_equal(peer_forwarded(" 2001:DB8:0:0::1 ", nets, (size_t)n, out), 0);
    assert_string_equal(out, "2001:db8::1");
    assert_int_equal(peer_forwarded("::ffff:198.51.100.7", nets, (size_t)n, out), 0);
    assert_string_equal(out, "198.51.100.7");
}

static void
test_forwarded_refuses_garbage(void **state)
{
    char out[PEER_ADDR_LEN];
    int n = parse("10.0.0.0/8");

    /* A log line must never carry what a client typed. */
    assert_int_equal(peer_forwarded("evil\nauth failure from 1.2.3.4", nets, (size_t)n, out), -1);
    assert_int_equal(peer_forwarded("198.51.100.2:4711", nets, (size_t)n, out), -1);
    assert_int_equal(peer_forwarded("1.2.3.4, , 10.0.0.1", nets, (size_t)n, out), -1);
    assert_int_equal(peer_forwarded("not an address", nets, (size_t)n, out), -1);
    assert_int_equal(peer_forwarded("", nets, (size_t)n, out), -1);
    assert_int_equal(peer_forwarded(NULL, nets, (size_t)n, out), -1);
    /* More trusted hops than are walked: nothing. */
    char chain[PEER_MAX_HOPS * 10 + 32] = "198.51.100.2";
    for (int i = 0; i < PEER_MAX_HOPS; i++)
        strcat(chain, ",10.0.0.1");
    assert_int_equal(peer_forwarded(chain, nets, (size_t)n, out), -1);
}

/* What peer_admit() and peer_hold() report besides their result. */
static int retry;
static bool to_log, full;

/* A table with these limits (see struct peer_limits). */
static struct peer_table *
table(int max_conns, int rate, int burst, size_t max_entries)
{
    struct peer_limits lim = {max_conns, rate, burst, max_entries};
    struct peer_table *t = peer_table_new(&lim);
    assert_non_null(t);
    return t;
}

static void
test_caps_connections(void **state)
{
    struct peer_table *t = table(2, 0, 1, 16);
    struct peer_slot *a, *b;

    assert_int_equal(peer_admit(t, "192.0.2.1", 0, &retry, &to_log), PEER_ADMIT);
    a = peer_hold(t, "192.0.2.1", 0, &full);
    assert_false(full);
    b = peer_hold(t, "192.0.2.1", 0, &full);
    assert_non_null(a);
    assert_ptr_equal(a, b);
    assert_int_equal(peer_table_size(t), 1);
    assert_int_equal(peer_admit(t, "192.0.2.1", 0, &retry, &to_log), PEER_TOO_MANY);
    assert_true(to_log);
    /* The next refusal within a second is not logged again. */
    assert_int_equal(peer_admit(t, "192.0.2.1", 500, &retry, &to_log), PEER_TOO_MANY);
    assert_false(to_log);
    /* The same address written as IPv4-mapped IPv6 is the same client. */
    assert_int_equal(peer_admit(t, "::ffff:192.0.2.1", 500, &retry, &to_log), PEER_TOO_MANY);
    assert_int_equal(peer_admit(t, "192.0.2.2", 0, &retry, &to_log), PEER_ADMIT);
    peer_release(t, a, 10);
    assert_int_equal(peer_admit(t, "192.0.2.1", 10, &retry, &to_log), PEER_ADMIT);
    peer_release(t, b, 20);
    /* No connection left and no bucket to refill: the entry is gone. */
    assert_int_equal(peer_table_size(t), 0);
    /* Not an address: let in, not counted. */
    assert_int_equal(peer_admit(t, "unknown", 0, &retry, &to_log), PEER_ADMIT);
    assert_null(peer_hold(t, "unknown", 0, &full));
    assert_false(full);
    peer_table_free(t);
}

static void
test_caps_ipv6_per_64(void **state)
{
    struct peer_table *t = table(1, 0, 1, 16);

    struct peer_slot *s = peer_hold(t, "2001:db8:1:2::1", 0, &full);
    assert_non_null(s);
    assert_int_equal(peer_admit(t, "2001:db8:1:2:ffff::9", 0, &retry, &to_log), PEER_TOO_MANY);
    assert_int_equal(peer_admit(t, "2001:db8:1:3::1", 0, &retry, &to_log), PEER_ADMIT);
    peer_release(t, s, 0);
    peer_table_free(t);
}

static void
test_caps_handshake_bucket(void **state)
{
    struct peer_table *t = table(0, 2, 3, 16);

    for (int i = 0; i < 3; i++)
        assert_int_equal(peer_admit(t, "198.51.100.7", 0, &retry, &to_log), PEER_ADMIT);
    assert_int_equal(peer_admit(t, "198.51.100.7", 0, &retry, &to_log), PEER_TOO_FAST);
    assert_int_equal(retry, 1); /* one token comes back in 500 ms: asked to wait a second */
    assert_true(to_log);
    assert_int_equal(peer_admit(t, "198.51.100.7", 499, &retry, &to_log), PEER_TOO_FAST);
    assert_false(to_log);
    assert_int_equal(peer_admit(t, "198.51.100.7", 500, &retry, &to_log), PEER_ADMIT);
    assert_int_equal(peer_admit(t, "198.51.100.7", 500, &retry, &to_log), PEER_TOO_FAST);
    /* The connection cap is off: nothing is held. */
    assert_null(peer_hold(t, "198.51.100.7", 500, &full));
    assert_false(full);
    /* Once the bucket is full again the entry is dropped at the next sweep. */
    assert_int_equal(peer_table_size(t), 1);
    assert_int_equal(peer_admit(t, "198.51.100.8", 500 + PEER_SWEEP_MS, &retry, &to_log),
                     PEER_ADMIT);
    assert_int_equal(peer_table_size(t), 1);
    peer_table_free(t);
}

static void
test_caps_table_bound(void **state)
{
    struct peer_table *t = table(4, 1, 1, 2);

    assert_int_equal(peer_admit(t, "203.0.113.1", 0, &retry, &to_log), PEER_ADMIT);
    assert_int_equal(peer_admit(t, "203.0.113.2", 0, &retry, &to_log), PEER_ADMIT);
    /* Full of entries still needed (empty buckets): the newcomer is let in uncounted. */
    assert_int_equal(peer_admit(t, "203.0.113.3", 0, &retry, &to_log), PEER_TABLE_FULL);
    assert_null(peer_hold(t, "203.0.113.3", 0, &full));
    assert_true(full);
    assert_int_equal(peer_table_size(t), 2);
    /* A second later both buckets are full again: the sweep makes room. */
    assert_int_equal(peer_admit(t, "203.0.113.3", 1000, &retry, &to_log), PEER_ADMIT);
    assert_int_equal(peer_table_size(t), 1);
    peer_table_free(t);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_match),
        cmocka_unit_test(test_parse_prefixes),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_forwarded_walks_from_the_right),
        cmocka_unit_test(test_forwarded_refuses_garbage),
        cmocka_unit_test(test_caps_connections),
        cmocka_unit_test(test_caps_ipv6_per_64),
        cmocka_unit_test(test_caps_handshake_bucket),
        cmocka_unit_test(test_caps_table_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
