/*
 * producer.c - armonia-producer, the benchmark's event source for the
 * systems that read events from PostgreSQL (the hub, and the ws and
 * Socket.IO peers, which LISTEN on the same outbox).
 *
 * Every event is one call of hub.emit() in a transaction of its own, as an
 * application's trigger would make it; its data carries "t_us", the
 * database's clock_timestamp() in µs when the statement ran, from which the
 * load generator computes commit→receipt latency. The statements go over a
 * few connections in libpq's pipeline mode (one Sync per statement, so each
 * is its own implicit transaction), so the producer itself costs a few µs
 * per event and the database does not wait for a client round trip between
 * events: the cores stay with the systems under test.
 *
 *   armonia-producer --url URL [--conns N] [--inflight N] [--msg TEXT]
 *
 * Commands on stdin, one per line; several streams may run at once:
 *   fire id=ID rate=R count=N kind=K priority=P tenant=T room=R
 *        [tenants=NT] [units=NU]
 *        emits N events at R per second (paced from the start; never more
 *        than --inflight statements unanswered in all, so a database that
 *        cannot keep up shows as a lower offered rate). With tenants=NT the
 *        i-th event's tenant is T followed by i mod NT in three digits; with
 *        units=NU its room is R followed by (i div max(NT,1)) mod NU.
 *        When every statement of the stream has been answered, prints
 *        {"id":"ID","sent":N,"ok":K,"errors":E,"elapsed_s":S}, where S is
 *        the time from the first event to the last one sent plus one
 *        interval (1/R), so that a producer that kept pace reports R.
 *   quit
 */
#define _GNU_SOURCE
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 16
#define MAX_STREAMS 8
#define MAX_INFLIGHT 4096
#define FIELD 128

static const char EMIT_SQL[] =
    "SELECT hub.emit($1, $2, ARRAY[$3]::text[], jsonb_build_object('t_us', "
    "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint, 'msg', $4::text), $5, false)";

struct stream {
    int used;
    char id[FIELD], kind[FIELD], priority[FIELD], tenant[FIELD], room[FIELD];
    double rate, t0, t_last;
    long count, sent, answered, ok, errors;
    int tenants, units;
};

struct conn {
    PGconn *pg;
    int want_write;
    /* Streams of the statements in flight, oldest first (a ring). */
    int ring[MAX_INFLIGHT];
    int head, n;
};

static struct stream streams[MAX_STREAMS];
static struct conn conns[MAX_CONNS];
static int nconns = 2, max_inflight = 256, inflight, rr;
static const char *msg = "Visitante en porteria: Juan Perez, torre 3, apartamento 302";

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
die(const char *what, PGconn *pg)
{
    fprintf(stderr, "armonia-producer: %s%s%s\n", what, pg ? ": " : "",
            pg ? PQerrorMessage(pg) : "");
    exit(1);
}

/* Copies the value of key=... from a command line into out (empty if absent). */
static void
field(const char *line, const char *key, char *out)
{
    size_t k = strlen(key);
    out[0] = 0;
    for (const char *p = line; (p = strstr(p, key)); p += k) {
        if ((p != line && p[-1] != ' ') || p[k] != '=')
            continue;
        p += k + 1;
        size_t n = strcspn(p, " \r\n");
        if (n >= FIELD)
            n = FIELD - 1;
        memcpy(out, p, n);
        out[n] = 0;
        return;
    }
}

static void finish_stream(struct stream *s);

static void
start_stream(const char *line)
{
    struct stream *s = NULL;
    for (int i = 0; i < MAX_STREAMS && !s; i++)
        if (!streams[i].used)
            s = &streams[i];
    if (!s) {
        fprintf(stderr, "armonia-producer: more than %d streams at once\n", MAX_STREAMS);
        return;
    }
    char v[FIELD];
    memset(s, 0, sizeof(*s));
    field(line, "id", s->id);
    field(line, "kind", s->kind);
    field(line, "priority", s->priority);
    field(line, "tenant", s->tenant);
    field(line, "room", s->room);
    field(line, "rate", v);
    s->rate = atof(v);
    field(line, "count", v);
    s->count = atol(v);
    field(line, "tenants", v);
    s->tenants = atoi(v);
    field(line, "units", v);
    s->units = atoi(v);
    if (s->rate <= 0 || s->count < 0 || !s->kind[0] || !s->tenant[0] || !s->room[0]) {
        fprintf(stderr, "armonia-producer: bad command: %s", line);
        return;
    }
    s->used = 1;
    s->t0 = s->t_last = now_s();
    if (s->count == 0)
        finish_stream(s);
}

static void
finish_stream(struct stream *s)
{
    printf("{\"id\":\"%s\",\"sent\":%ld,\"ok\":%ld,\"errors\":%ld,\"elapsed_s\":%.6f}\n", s->id,
           s->sent, s->ok, s->errors, s->t_last - s->t0 + 1 / s->rate);
    fflush(stdout);
    s->used = 0;
}

/* Sends event number s->sent of stream s on the next connection. */
static void
send_one(struct stream *s)
{
    struct conn *c = &conns[rr++ % nconns];
    char tenant[FIELD + 16], room[FIELD + 16];
    long i = s->sent;
    if (s->tenants > 0)
        snprintf(tenant, sizeof(tenant), "%s%03ld", s->tenant, i % s->tenants);
    else
        snprintf(tenant, sizeof(tenant), "%s", s->tenant);
    if (s->units > 0)
        snprintf(room, sizeof(room), "%s%ld", s->room,
                 (i / (s->tenants > 0 ? s->tenants : 1)) % s->units);
    else
        snprintf(room, sizeof(room), "%s", s->room);
    const char *params[5] = {tenant, s->kind, room, msg, s->priority[0] ? s->priority : "normal"};
    if (!PQsendQueryPrepared(c->pg, "emit", 5, params, NULL, NULL, 0) || !PQpipelineSync(c->pg))
        die("sending hub.emit", c->pg);
    c->ring[(c->head + c->n) % MAX_INFLIGHT] = (int)(s - streams);
    c->n++;
    inflight++;
    s->sent++;
    s->t_last = now_s();
    c->want_write = PQflush(c->pg) == 1;
}

/* Reads what the server answered on c; one Sync result ends each statement. */
static void
on_readable(struct conn *c)
{
    if (!PQconsumeInput(c->pg))
        die("reading from the database", c->pg);
    while (c->n && !PQisBusy(c->pg)) {
        PGresult *r = PQgetResult(c->pg);
        if (!r)
            continue; /* end of one statement's results */
        struct stream *s = &streams[c->ring[c->head]];
        switch (PQresultStatus(r)) {
        case PGRES_TUPLES_OK:
            s->ok++;
            break;
        case PGRES_PIPELINE_SYNC:
            c->head = (c->head + 1) % MAX_INFLIGHT;
            c->n--;
            inflight--;
            if (++s->answered == s->count && s->sent == s->count)
                finish_stream(s);
            break;
        default:
            if (s->errors++ < 3)
                fprintf(stderr, "armonia-producer: hub.emit failed: %s", PQresultErrorMessage(r));
            break;
        }
        PQclear(r);
    }
}

int
main(int argc, char **argv)
{
    const char *url = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--url"))
            url = argv[i + 1];
        else if (!strcmp(argv[i], "--conns"))
            nconns = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--inflight"))
            max_inflight = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--msg"))
            msg = argv[i + 1];
        else {
            fprintf(stderr, "armonia-producer: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (!url || nconns < 1 || nconns > MAX_CONNS || max_inflight < 1 ||
        max_inflight > MAX_INFLIGHT) {
        fprintf(stderr,
                "usage: armonia-producer --url URL [--conns 1-%d] [--inflight 1-%d] "
                "[--msg TEXT]\n",
                MAX_CONNS, MAX_INFLIGHT);
        return 2;
    }
    for (int i = 0; i < nconns; i++) {
        PGconn *pg = PQconnectdb(url);
        if (PQstatus(pg) != CONNECTION_OK)
            die("connecting", pg);
        PGresult *r = PQprepare(pg, "emit", EMIT_SQL, 0, NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            die("preparing hub.emit", pg);
        PQclear(r);
        if (PQsetnonblocking(pg, 1) || !PQenterPipelineMode(pg))
            die("entering pipeline mode", pg);
        conns[i].pg = pg;
    }
    printf("{\"phase\":\"ready\",\"conns\":%d}\n", nconns);
    fflush(stdout);

    char line[1024];
    size_t have = 0;
    int open_stdin = 1;
    struct pollfd pfd[MAX_CONNS + 1];
    for (;;) {
        int active = 0;
        double t = now_s();
        for (int i = 0; i < MAX_STREAMS; i++) {
            struct stream *s = &streams[i];
            if (!s->used)
                continue;
            long due = (long)((t - s->t0) * s->rate) + 1;
            if (due > s->count)
                due = s->count;
            while (s->sent < due && inflight < max_inflight)
                send_one(s);
            if (s->sent < s->count)
                active = 1;
        }
        if (!open_stdin && !inflight && !active)
            break;
        int n = 0;
        pfd[n++] = (struct pollfd){.fd = open_stdin ? 0 : -1, .events = POLLIN};
        for (int i = 0; i < nconns; i++)
            pfd[n++] = (struct pollfd){.fd = PQsocket(conns[i].pg),
                                       .events = POLLIN | (conns[i].want_write ? POLLOUT : 0)};
        if (poll(pfd, n, active ? 1 : 100) < 0 && errno != EINTR)
            die("poll", NULL);
        for (int i = 0; i < nconns; i++) {
            struct conn *c = &conns[i];
            if (pfd[i + 1].revents & POLLOUT)
                c->want_write = PQflush(c->pg) == 1;
            if (pfd[i + 1].revents & (POLLIN | POLLERR | POLLHUP))
                on_readable(c);
        }
        if (pfd[0].revents & (POLLIN | POLLHUP)) {
            ssize_t got = read(0, line + have, sizeof(line) - 1 - have);
            if (got <= 0) {
                open_stdin = 0;
                continue;
            }
            have += (size_t)got;
            line[have] = 0;
            char *nl;
            while ((nl = strchr(line, '\n'))) {
                *nl = 0;
                if (!strncmp(line, "fire ", 5))
                    start_stream(line);
                else if (!strcmp(line, "quit"))
                    open_stdin = 0;
                else if (line[0])
                    fprintf(stderr, "armonia-producer: unknown command: %s\n", line);
                size_t used = (size_t)(nl - line) + 1;
                memmove(line, nl + 1, have - used + 1);
                have -= used;
            }
            if (have == sizeof(line) - 1)
                have = 0; /* an over-long line: dropped */
        }
    }
    for (int i = 0; i < nconns; i++)
        PQfinish(conns[i].pg);
    return 0;
}
