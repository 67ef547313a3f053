/*
 * test_peer.c - unit tests for hub/peer.c: which proxies are trusted and
 * which forwarded address is logged for a client behind them.
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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_match),
        cmocka_unit_test(test_parse_prefixes),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_forwarded_walks_from_the_right),
        cmocka_unit_test(test_forwarded_refuses_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
