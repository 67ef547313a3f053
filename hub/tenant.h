/*
 * tenant.h - whether the tenant a token names exists, asked of the
 * database (hub.is_tenant) and cached per tenant, for the connections
 * waiting to be admitted.
 *
 * A verdict, positive or not, is remembered (HUB_TENANT_CACHE_MS for a
 * known tenant, TENANT_NEGATIVE_CACHE_MS for an unknown one); one lookup
 * per tenant is in flight at most, and every connection waiting for it
 * gets its answer.
 */
#ifndef HUB_TENANT_H
#define HUB_TENANT_H

struct hub;
struct conn;
struct tenant;
struct tenant_checks;

/* A failed tenant lookup is remembered this long before it is asked again. */
#define TENANT_NEGATIVE_CACHE_MS 5000

/*
 * What a waiting connection is told: t->check is TENANT_KNOWN (admit it),
 * TENANT_UNKNOWN (refuse it) or TENANT_UNCHECKED (the database cannot say
 * now). Called only for a connection still in CONN_CHECKING.
 */
typedef void (*tenant_verdict_fn)(struct conn *c, struct tenant *t);

/* The checks of one hub, answering through verdict (session.c's); NULL on OOM. */
struct tenant_checks *tenant_checks_new(struct hub *hub, tenant_verdict_fn verdict);

/* Frees them; NULL is ignored. */
void tenant_checks_free(struct tenant_checks *tc);

/*
 * c holds valid claims: moves it to CONN_CHECKING and has its tenant
 * verified. The verdict may come at once (cached) or when the database
 * answers; c's authentication deadline still runs meanwhile.
 */
void tenant_admit(struct conn *c);

/* The work connection is (again) up: tenant checks that were waiting go. */
void tenant_db_up(struct tenant_checks *tc);

/* c is gone before it was admitted: it waits for nothing any more. */
void tenant_forget(struct conn *c);

#endif
