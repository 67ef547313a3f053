/*
 * event.c - one outbox row as the router and replay see it (event.h).
 */
#include "event.h"
#include "frame.h"
#include "log.h"

#include <stdlib.h>

json_t *
event_map(const struct event *ev)
{
    return json_pack("{s:s, s:I, s:I, s:s, s:s, s:b, s:I, s:s}", "type", "event", "id",
                     (json_int_t)ev->id, "seq", (json_int_t)ev->seq, "kind", ev->kind, "priority",
                     ev->priority, "ack", ev->ack, "ts", (json_int_t)ev->ts_ms, "room", "");
}

/* Whether rooms is an array of strings (room names can be nothing else). */
static int
rooms_ok(const json_t *rooms)
{
    if (!json_is_array(rooms))
        return 0;
    for (size_t i = 0; i < json_array_size(rooms); i++)
        if (!json_is_string(json_array_get(rooms, i)))
            return 0;
    return 1;
}

int
event_from_row(const PGresult *res, int i, struct event *ev)
{
    const char *why = NULL;
    *ev = (struct event){
        .id = strtoll(PQgetvalue(res, i, 0), NULL, 10),
        .seq = strtoll(PQgetvalue(res, i, 1), NULL, 10),
        .tenant = PQgetvalue(res, i, 2),
        .kind = PQgetvalue(res, i, 3),
        .rooms = json_loads(PQgetvalue(res, i, 4), 0, NULL),
        .data = PQgetvalue(res, i, 5),
        .data_len = (size_t)PQgetlength(res, i, 5),
        .priority = PQgetvalue(res, i, 6),
        .ack = PQgetvalue(res, i, 7)[0] == 't',
        .ts_ms = strtoll(PQgetvalue(res, i, 8), NULL, 10),
        .committed_us = strtoll(PQgetvalue(res, i, 9), NULL, 10),
    };
    if (!rooms_ok(ev->rooms))
        ev->undeliverable = "rooms are not a list of room names";
    else if (frame_data_check(ev->data, ev->data_len, &why) != 0)
        ev->undeliverable = why;
    if (ev->undeliverable)
        log_err("event", "event %lld cannot be delivered (%s); delivered to nobody",
                (long long)ev->id, ev->undeliverable);
    return 0;
}

void
event_clear(struct event *ev)
{
    json_decref(ev->rooms);
    ev->rooms = NULL;
}
