#!/usr/bin/env bash
# A private PostgreSQL cluster for the demo and the tests.
#
#   scripts/pg.sh start DIR        create (if missing) and start the cluster of DIR,
#                                  create database armonia, apply the steps of
#                                  schema hub (schema/NNN_*.sql) and the demo
#                                  tenant's SQL (schema/demo/*.sql), write
#                                  DIR/url; prints "pg: ready at URL"
#   scripts/pg.sh stop DIR         fast shutdown; no error when it is not running
#   scripts/pg.sh restart DIR      fast restart on the same port
#   scripts/pg.sh url DIR          print the URL (postgresql://postgres@127.0.0.1:PORT/armonia)
#   scripts/pg.sh hub-url DIR      print the URL the hub uses: the same database as
#                                  the LOGIN role armonia_hub_login, a member of
#                                  armonia_hub (schema/080_roles.sql) and nothing else
#   scripts/pg.sh psql DIR [ARGS]  psql connected to database armonia
#
# The server listens only on 127.0.0.1, on a port chosen once (the first free
# one of 680 just above the kernel's range for outgoing connections, 61000..
# 61679 with Linux's default range) and kept in DIR/port, so the URL never
# changes. Its
# settings trade durability for speed (fsync off): this is for dev and test
# boxes only. Authentication is "trust": anyone on this machine can connect.
# The superuser (postgres) is for setup and tests; the hub connects as
# armonia_hub_login, which has only the rights schema/080_roles.sql grants
# armonia_hub, so a grant the hub lacks fails here as it would in production.
#
# PostgreSQL refuses to run as root, so as root every server-side command runs
# as the postgres user, and the cluster itself lives in
# /tmp/armonia-pg-<hash of DIR's real path>/data (owned by postgres, 0700) with
# DIR/data a symbolic link to it: DIR may be somewhere postgres cannot enter
# (a clone under a private mktemp -d). Such clusters whose DIR has since been
# deleted are removed by the next start.
#
# Prints nothing but errors and the one "ready" line; exit status 0 on success.
set -euo pipefail

# Ports are taken from outside the kernel's range for outgoing connections
# (net.ipv4.ip_local_port_range): a client socket that happened to get the
# chosen port as its local one would make the server's bind() fail with
# "Address already in use", which checking for a listener cannot foresee.
read -r EPHEMERAL_LO EPHEMERAL_HI </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null ||
    { EPHEMERAL_LO=32768; EPHEMERAL_HI=60999; }
if ((EPHEMERAL_HI + 1000 <= 65535)); then
    PORT_FIRST=$((EPHEMERAL_HI + 1))
else
    PORT_FIRST=$((EPHEMERAL_LO - 1000))
fi
readonly PORT_FIRST PORT_LAST=$((PORT_FIRST + 679))
readonly READY_TIMEOUT_S=30
readonly LOG_TAIL_LINES=60
readonly START_LOCK_WAIT_S=60
readonly DB_NAME=armonia
# Key of the advisory lock that serialises concurrent schema applications
# (any constant distinct from the seq lock of schema/010_outbox.sql).
readonly SCHEMA_LOCK_KEY=4242000001
# The LOGIN role the hub connects as (trust authentication, no password).
readonly HUB_LOGIN_ROLE=armonia_hub_login

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
schema_dir=$(cd "$here/../schema" && pwd)

die() {
    echo "pg: $*" >&2
    exit 1
}

usage() {
    cat >&2 <<'TXT'
usage: scripts/pg.sh start DIR | stop DIR | restart DIR | url DIR | hub-url DIR | psql DIR [psql args...]
TXT
    exit 2
}

# The newest PostgreSQL installed under /usr/lib/postgresql (Debian does not
# put initdb and pg_ctl on PATH); otherwise whatever pg_ctl PATH has.
find_bindir() {
    local d v best=0
    for d in /usr/lib/postgresql/*/bin; do
        v=${d#/usr/lib/postgresql/}
        v=${v%/bin}
        if [[ $v =~ ^[0-9]+$ ]] && [ -x "$d/pg_ctl" ] && [ "$v" -gt "$best" ]; then
            best=$v
        fi
    done
    if [ "$best" -gt 0 ]; then
        echo "/usr/lib/postgresql/$best/bin"
    elif command -v pg_ctl >/dev/null; then
        dirname "$(command -v pg_ctl)"
    else
        die "no PostgreSQL server found (looked in /usr/lib/postgresql/*/bin and PATH); run scripts/deps.sh"
    fi
}
bindir=$(find_bindir)

is_root() { [ "$(id -u)" -eq 0 ]; }

# Runs a server-side command as the user that owns the cluster. As root it
# runs from / because PostgreSQL's programs fail when they cannot read their
# working directory. Descriptor 9 (the start lock) is closed: a server that
# inherited it would hold the lock for as long as it runs.
as_pg() {
    if is_root; then
        (cd / && runuser -u postgres -- "$@" 9>&-)
    else
        "$@" 9>&-
    fi
}

# Sets the globals describing DIR's cluster: dir (real path of DIR), pgdata,
# home (the /tmp directory as root, empty otherwise), logfile, conf.
resolve_dir() {
    local arg=$1 create=$2
    if [ "$create" = yes ]; then
        mkdir -p "$arg"
    fi
    dir=$(realpath -m "$arg")
    home=""
    if [ -L "$dir/data" ] || [ -d "$dir/data" ]; then
        pgdata=$(realpath -m "$dir/data")
        case $pgdata in /tmp/armonia-pg-*/data) home=$(dirname "$pgdata") ;; esac
    elif is_root; then
        home=/tmp/armonia-pg-$(printf '%s' "$dir" | sha256sum | cut -c1-12)
        pgdata=$home/data
    else
        pgdata=$dir/data
    fi
    logfile=$pgdata/server.log
    conf=$pgdata/armonia.conf
}

# Prints the last lines of the server log (and of initdb's output) to stderr.
log_tail() {
    local f
    for f in "$logfile" "${initdb_log:-}"; do
        if [ -z "$f" ] || [ ! -r "$f" ]; then continue; fi
        echo "pg: last lines of $f:" >&2
        tail -n "$LOG_TAIL_LINES" "$f" >&2 || true
    done
}

running() {
    [ -f "$pgdata/PG_VERSION" ] || return 1
    as_pg "$bindir/pg_ctl" -D "$pgdata" status >/dev/null 2>&1
}

port_in_use() {
    timeout 1 bash -c ": <>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# Every cluster's port is registered in /tmp/armonia-pg-registry.<uid>/<port>
# (the file holds DIR's real path), so a new cluster never takes the port of
# one that is merely stopped. An entry counts only while that DIR still
# exists and its DIR/port still names the port: stale entries cost nothing.
registry_dir() { echo "/tmp/armonia-pg-registry.$(id -u)"; }

port_registered() {
    local p=$1 f owner
    for f in /tmp/armonia-pg-registry.*/"$p"; do
        [ -r "$f" ] || continue
        owner=$(cat "$f" 2>/dev/null) || continue
        [ "$owner" != "$dir" ] || continue
        [ "$(cat "$owner/port" 2>/dev/null)" = "$p" ] && return 0
    done
    return 1
}

register_port() {
    local reg
    reg=$(registry_dir)
    mkdir -p "$reg"
    chmod 0755 "$reg"
    printf '%s\n' "$dir" >"$reg/$1"
}

# The port of this cluster: DIR/port, else the one its configuration names
# (DIR/port was lost), else the first free one in the range.
choose_port() {
    local p
    if [ -s "$dir/port" ]; then
        cat "$dir/port"
        return
    fi
    if [ -r "$conf" ] && p=$(sed -n "s/^port = \([0-9]*\)$/\1/p" "$conf") && [ -n "$p" ]; then
        echo "$p"
        return
    fi
    for ((p = PORT_FIRST; p <= PORT_LAST; p++)); do
        port_registered "$p" && continue
        port_in_use "$p" && continue
        echo "$p"
        return
    done
    die "no free port in $PORT_FIRST..$PORT_LAST on 127.0.0.1"
}

# Creates the cluster directory, initdb's it, and hooks armonia.conf in.
init_cluster() {
    local locale=C
    if locale -a 2>/dev/null | grep -qix 'c\.utf-\?8'; then
        locale=C.UTF-8
    fi
    if [ -n "$home" ]; then
        # A directory in /tmp is only trusted if we made it or postgres owns it.
        if [ -e "$home" ] && { [ -L "$home" ] || [ "$(stat -c %U "$home")" != postgres ]; }; then
            die "$home exists but is not a directory owned by postgres; remove it"
        fi
        mkdir -p "$home"
        chown postgres:postgres "$home"
        chmod 0700 "$home"
        printf '%s\n' "$dir" >"$home/owner"
        ln -sfn "$pgdata" "$dir/data"
    fi
    as_pg mkdir -p "$pgdata"
    initdb_log=$(mktemp)
    if ! as_pg "$bindir/initdb" -D "$pgdata" -E UTF8 --locale="$locale" \
        --auth=trust -U postgres >"$initdb_log" 2>&1; then
        log_tail
        die "initdb failed for $pgdata"
    fi
    rm -f "$initdb_log"
    initdb_log=""
    printf "\n# Armonía Hub private cluster: settings written by scripts/pg.sh\ninclude_if_exists = 'armonia.conf'\n" |
        as_pg tee -a "$pgdata/postgresql.conf" >/dev/null
}

# (Re)writes armonia.conf: everything that differs from a stock cluster.
write_conf() {
    local port=$1 sockdir=$pgdata
    # A Unix socket path is limited to 107 bytes; TCP is what we use anyway.
    if [ ${#sockdir} -gt 90 ]; then
        sockdir=""
    fi
    as_pg tee "$conf" >/dev/null <<CONF
# Written by scripts/pg.sh on every start; edits here are lost.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sockdir'
max_connections = 200
# A dev/test box: speed over durability.
fsync = off
# On (the default), not off: with fsync off a synchronous commit costs the
# committing backend one write(), while an asynchronous one signals the WAL
# writer at every commit (a kill() and a context switch): hub.emit() at 640
# events/s cost 430-510 CPU-us per event in the cluster that way, 250 this way.
synchronous_commit = on
full_page_writes = off
log_line_prefix = '%m [%p] %q%u@%d '
log_timezone = 'UTC'
CONF
}

wait_ready() {
    local port=$1 deadline=$((SECONDS + READY_TIMEOUT_S))
    until "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -t 1 >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            log_tail
            die "the server on 127.0.0.1:$port did not become ready within ${READY_TIMEOUT_S} s"
        fi
        sleep 0.2
    done
}

# The server answering on port must be this cluster: a stopped cluster
# whose port another one took meanwhile would otherwise hand out the other
# cluster's URL as its own.
check_owner() {
    local port=$1 served want
    served=$("$bindir/psql" -X -A -t -w -h 127.0.0.1 -p "$port" -U postgres -d postgres \
        -c 'SHOW data_directory' 2>/dev/null) || die "cannot ask the server on 127.0.0.1:$port for its data directory"
    want=$(realpath -m "$pgdata")
    [ "$(realpath -m "$served")" = "$want" ] ||
        die "the server on 127.0.0.1:$port serves $served, not $want (another cluster took the port; stop it or remove $dir/port)"
}

server_start() {
    local port=$1
    if ! as_pg "$bindir/pg_ctl" -D "$pgdata" -l "$logfile" -w -t "$READY_TIMEOUT_S" start >/dev/null 2>&1; then
        log_tail
        die "could not start the server in $pgdata (port $port)"
    fi
}

# Removes /tmp clusters whose DIR is gone and that are not running.
collect_orphans() {
    local h owner
    is_root || return 0
    for h in /tmp/armonia-pg-*; do
        if [ ! -d "$h" ] || [ -L "$h" ] || [ ! -r "$h/owner" ]; then continue; fi
        [ "$(stat -c %U "$h")" = postgres ] || continue
        owner=$(cat "$h/owner")
        if [ -z "$owner" ] || [ -e "$owner" ]; then continue; fi
        if [ -f "$h/data/PG_VERSION" ] &&
            as_pg "$bindir/pg_ctl" -D "$h/data" status >/dev/null 2>&1; then
            continue
        fi
        rm -rf "$h"
    done
}

psql_q() {
    PGOPTIONS="-c client_min_messages=warning" "$bindir/psql" -X -q -w -v ON_ERROR_STOP=1 "$@"
}

# Creates the database if missing, then applies the steps of schema hub
# (schema/NNN_*.sql) in name order and the demo tenant's SQL
# (schema/demo/*.sql), all in one transaction under an advisory lock so two
# starts at once cannot interleave their CREATE OR REPLACE statements. A dev
# and test cluster follows the tree it is started from: every step is
# applied again (each is safe to apply twice) and hub.schema_migrations is
# made to record exactly the tree's steps with their checksums, so the hub's
# check at start passes even after a step was edited. A production database
# gets its steps from `armonia-hub migrate` instead, which never re-applies
# a step and refuses an edited one (docs/operations.md).
apply_schema() {
    local port=$1 url=$2 exists
    exists=$(psql_q -At -d "postgresql://postgres@127.0.0.1:$port/postgres" \
        -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")
    if [ "$exists" != 1 ]; then
        psql_q -d "postgresql://postgres@127.0.0.1:$port/postgres" -c "CREATE DATABASE $DB_NAME" 2>/dev/null ||
            [ "$(psql_q -At -d "postgresql://postgres@127.0.0.1:$port/postgres" \
                -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" = 1 ] ||
            die "could not create database $DB_NAME"
    fi
    local files=() f LC_COLLATE=C record="" steps=""
    for f in "$schema_dir"/[0-9][0-9][0-9]_*.sql; do
        [ -f "$f" ] || continue
        local step sum
        step=$(basename "$f" .sql)
        sum=$(sha256sum "$f" | cut -d' ' -f1)
        files+=(-f "$f")
        record+="INSERT INTO hub.schema_migrations (step, checksum) VALUES ('$step', '$sum')
    ON CONFLICT (step) DO UPDATE SET checksum = EXCLUDED.checksum, applied_at = now();
"
        steps+="${steps:+, }'$step'"
    done
    [ ${#files[@]} -gt 0 ] || die "no steps (NNN_*.sql) in $schema_dir"
    for f in "$schema_dir"/demo/*.sql; do
        if [ -f "$f" ]; then files+=(-f "$f"); fi
    done
    record+="DELETE FROM hub.schema_migrations WHERE step NOT IN ($steps);"
    psql_q -1 -d "$url" -c "DO \$\$BEGIN PERFORM pg_advisory_xact_lock($SCHEMA_LOCK_KEY); END\$\$" "${files[@]}" \
        -c "$record" -c "$(hub_login_sql)" ||
        die "applying the SQL of $schema_dir failed"
}

# SQL creating the hub's LOGIN role when missing and making it a member of
# armonia_hub (only). Roles are cluster-wide: a concurrent creation from
# another database of the cluster is not an error.
hub_login_sql() {
    cat <<SQL
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = '$HUB_LOGIN_ROLE') THEN
        BEGIN
            CREATE ROLE $HUB_LOGIN_ROLE LOGIN IN ROLE armonia_hub;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
END
\$\$;
GRANT armonia_hub TO $HUB_LOGIN_ROLE;
SQL
}

# The URL of the same database for the hub's LOGIN role.
hub_url_of() {
    printf '%s\n' "$1" | sed "s|^postgresql://postgres@|postgresql://$HUB_LOGIN_ROLE@|"
}

write_url() {
    local url=$1 tmp="$dir/.url.$$"
    printf '%s\n' "$url" >"$tmp"
    chmod 0644 "$tmp"
    mv -f "$tmp" "$dir/url"
}

cmd_start() {
    resolve_dir "$1" yes
    local port url lock
    # One start at a time per user on this machine, so two new clusters never
    # pick the same port. Should the lock be stuck, go on without it: the
    # worst case is a port clash, which the server reports.
    lock=/tmp/armonia-pg-start.$(id -u).lock
    exec 9>>"$lock"
    flock -w "$START_LOCK_WAIT_S" 9 || echo "pg: $lock still held after ${START_LOCK_WAIT_S} s; starting without it" >&2
    [ -f "$pgdata/PG_VERSION" ] || init_cluster
    collect_orphans
    port=$(choose_port)
    printf '%s\n' "$port" >"$dir/port"
    register_port "$port"
    if ! running; then
        write_conf "$port"
        server_start "$port"
    fi
    exec 9>&-
    wait_ready "$port"
    check_owner "$port"
    url="postgresql://postgres@127.0.0.1:$port/$DB_NAME"
    apply_schema "$port" "$url"
    write_url "$url"
    echo "pg: ready at $url"
}

cmd_stop() {
    resolve_dir "$1" no
    [ -f "$pgdata/PG_VERSION" ] || return 0
    running || return 0
    as_pg "$bindir/pg_ctl" -D "$pgdata" -m fast -w -t 60 stop >/dev/null 2>&1 || {
        log_tail
        die "could not stop the server in $pgdata"
    }
}

cmd_restart() {
    resolve_dir "$1" no
    [ -f "$pgdata/PG_VERSION" ] || die "no cluster in $1 (run: scripts/pg.sh start $1)"
    local port
    port=$(choose_port)
    write_conf "$port"
    if running; then
        as_pg "$bindir/pg_ctl" -D "$pgdata" -l "$logfile" -m fast -w -t "$READY_TIMEOUT_S" restart >/dev/null 2>&1 || {
            log_tail
            die "could not restart the server in $pgdata"
        }
    else
        server_start "$port"
    fi
    wait_ready "$port"
    check_owner "$port"
    echo "pg: ready at postgresql://postgres@127.0.0.1:$port/$DB_NAME"
}

cmd_url() {
    resolve_dir "$1" no
    [ -s "$dir/url" ] || die "no cluster started in $1 (run: scripts/pg.sh start $1)"
    cat "$dir/url"
}

cmd_hub_url() {
    resolve_dir "$1" no
    [ -s "$dir/url" ] || die "no cluster started in $1 (run: scripts/pg.sh start $1)"
    hub_url_of "$(cat "$dir/url")"
}

cmd_psql() {
    local url
    url=$(cmd_url "$1")
    shift
    exec "$bindir/psql" -X "$url" "$@"
}

[ $# -ge 2 ] || usage
cmd=$1
shift
case $cmd in
start) [ $# -eq 1 ] || usage; cmd_start "$1" ;;
stop) [ $# -eq 1 ] || usage; cmd_stop "$1" ;;
restart) [ $# -eq 1 ] || usage; cmd_restart "$1" ;;
url) [ $# -eq 1 ] || usage; cmd_url "$1" ;;
hub-url) [ $# -eq 1 ] || usage; cmd_hub_url "$1" ;;
psql) cmd_psql "$@" ;;
*) usage ;;
esac
