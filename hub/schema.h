/*
 * schema.h - the steps of schema hub this binary was built with, applying
 * them (`armonia-hub migrate`), and the check at start that the database
 * has exactly those steps.
 *
 * A step is one file schema/NNN_name.sql, carried in the binary byte for
 * byte (cmake/embed-schema.cmake) and named by its file name without
 * ".sql". hub.schema_migrations (schema/010_outbox.sql) records each step a
 * database has had with the SHA-256 of its text. A released step is never
 * edited: a change to the schema is a new step, so a database whose record
 * disagrees with this binary was set up by another version, and the hub
 * says which and what to run instead of failing query by query.
 */
#ifndef HUB_SCHEMA_H
#define HUB_SCHEMA_H

#include <stddef.h>

struct hub;

/* One step (generated: schema_steps.c). */
struct schema_step {
    const char *name; /* "010_outbox" */
    const char *sql;  /* its text, NUL-terminated */
    size_t len;       /* bytes of text */
};

extern const struct schema_step schema_steps[];
extern const unsigned schema_n_steps;

/* Length of a checksum in hex, without the NUL. */
#define SCHEMA_SUM_HEX 64

/* The lowercase hex SHA-256 of step s's text (what `sha256sum` prints). */
void schema_checksum(const struct schema_step *s, char out[SCHEMA_SUM_HEX + 1]);

/* How a database's record of steps compares with this binary's. */
enum schema_state {
    SCHEMA_OK,      /* the same steps, the same texts */
    SCHEMA_MISSING, /* no step recorded (or no schema hub at all) */
    SCHEMA_BEHIND,  /* some steps of this binary are not applied yet */
    SCHEMA_AHEAD,   /* a step this binary does not know was applied */
    SCHEMA_EDITED,  /* a step was applied from a different text */
};

/* One recorded step, as read from hub.schema_migrations. */
struct schema_applied {
    const char *step;
    const char *checksum;
};

/*
 * Compares the n recorded steps (any order) with this binary's and writes
 * into why (one line, no newline) what is wrong and what to run. A step
 * recorded twice cannot happen (primary key).
 */
enum schema_state schema_compare(const struct schema_applied *a, size_t n, char *why,
                                 size_t whylen);

/*
 * `armonia-hub migrate`: connects to conninfo and applies, in order, each
 * step the database lacks, each in its own transaction with its record,
 * under an advisory lock (concurrent runs wait for each other). Prints what
 * it does on stdout, errors on stderr. status_only: prints each step as
 * applied or pending and changes nothing. Returns the exit status: 0 done
 * (or nothing to do; with status_only: up to date), 1 the database failed
 * (a failed step is rolled back whole), 2 refused (the database is ahead of
 * this binary or a step's text differs), 3 status_only and steps pending.
 */
int schema_migrate(const char *conninfo, int status_only);

/*
 * The check at start: reads hub.schema_migrations on the hub's work
 * connection (just up) and calls ok(hub) if the database has exactly this
 * binary's steps. Otherwise it logs one line saying what to run and calls
 * refuse(hub): the hub stops with exit status 2. A query that fails for
 * another reason (the connection lost) changes nothing: the caller checks
 * again when the connection is back.
 */
void schema_check(struct hub *hub, void (*ok)(struct hub *), void (*refuse)(struct hub *));

#endif
