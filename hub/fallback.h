/*
 * fallback.h - reaching users the WebSocket did not reach (docs/protocol.md
 * "Fallback (push, SMS, e-mail)"; docs/fallback.md).
 *
 * The database holds the whole plan (schema/070_fallback.sql, with the
 * key of 100_devices.sql): jobs due at an event's ack timeout, delivery
 * rows per (event, user, channel, address: a push row per device token),
 * leases, results. This module is the hub's side: it asks for due jobs to
 * be planned, claims pending deliveries per channel as far as each
 * provider has room, renders and sends them through the providers
 * (channels/), and reports each outcome back, which may queue the next
 * channel. Several hubs may run it on one database at once.
 */
#ifndef HUB_FALLBACK_H
#define HUB_FALLBACK_H

#include <stdint.h>

struct hub;
struct fallback;

/*
 * Builds the providers from the configuration. Returns 0; or 2 after
 * printing one line naming the bad variable (the hub must not start); or
 * -1 on OOM. Unconfigured channels get one warning each.
 */
int fallback_new(struct hub *hub, struct fallback **out);

/* Connects its database session and starts the timers. */
void fallback_start(struct fallback *fb);

/*
 * Its NOTIFY channels (hub_deliveries: deliveries are pending; hub_policies:
 * a policy changed) are LISTENed on the hub's listener connection, not on a
 * session of its own: PostgreSQL wakes every listening session of the
 * database at every commit that notifies, so each event would otherwise
 * wake two of the hub's sessions instead of one.
 */
#define FALLBACK_CHANNEL_DELIVERIES "hub_deliveries"
#define FALLBACK_CHANNEL_POLICIES "hub_policies"

/* A NOTIFY on one of the channels above arrived. */
void fallback_notify(struct fallback *fb, const char *channel);

/* The listener connection (re)started listening on the channels above:
 * catches up with what was notified while it was not. */
void fallback_listening(struct fallback *fb);

/* True when event kinds without ack need "sent" marks (their policy has
 * fallback channels), so the router records who was sent them. */
int fallback_wants_sent_marks(const struct fallback *fb, const char *kind);

/* Stops timers and providers (transfers are aborted) and frees; call
 * while the lws context exists. */
void fallback_free(struct fallback *fb);

/* The state of the circuit breaker of channel ch's provider (enum channel):
 * 0 closed, 1 open, 2 half-open, -1 no provider configured (or fb NULL). */
int fallback_circuit(const struct fallback *fb, int ch);

#endif
