#!/bin/sh
# callgraph.sh - which file of hub/ calls which, read from the compiled
# objects, and a check that those calls never go round in a circle.
#
# Usage: scripts/callgraph.sh LIBRARY SOURCE_DIR [--print]
#
# LIBRARY is the static library the hub's files are compiled into
# (libhubcore.a); only its members built from SOURCE_DIR/*.c are looked at.
# File A calls file B when a symbol A's object leaves undefined is one B's
# object defines. With --print the edges are written as "A -> B" lines.
# Exits 1, naming the files, when the calls form a cycle: every call path
# must go one way (the event path: session -> replay -> router -> conn),
# and a lower file reaches a higher one only through a table of function
# pointers it is given (conn.h's struct conn_feed, db.h's struct db_ops).
set -eu

if [ $# -lt 2 ]; then
    echo "usage: $0 LIBRARY SOURCE_DIR [--print]" >&2
    exit 2
fi
lib=$1
src=$2
print=${3:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# "member kind symbol" for every symbol of the members built from src/*.c.
nm -A "$lib" 2>/dev/null |
    sed -n 's/^[^:]*:\([^:]*\)\.c\.o: *[0-9a-f]* *\([A-Za-z]\) \(.*\)$/\1 \2 \3/p' |
    while read -r member kind sym; do
        if [ -f "$src/$member.c" ]; then echo "$member $kind $sym"; fi
    done >"$tmp/syms"

# Defined globals (text, data, bss, read-only) and undefined references.
awk '$2 ~ /^[TDBRC]$/ {print $3, $1}' "$tmp/syms" | sort -u >"$tmp/defs"
awk '$2 == "U" {print $3, $1}' "$tmp/syms" | sort -u >"$tmp/uses"
join "$tmp/uses" "$tmp/defs" | awk '$2 != $3 {print $2, $3}' | sort -u >"$tmp/edges"

if [ ! -s "$tmp/syms" ]; then
    echo "$0: no objects of $src found in $lib" >&2
    exit 2
fi
if [ "$print" = "--print" ]; then
    awk '{print $1 " -> " $2}' "$tmp/edges"
fi
# tsort names the files of every loop it finds on standard error.
if ! tsort "$tmp/edges" >/dev/null 2>"$tmp/loops" || [ -s "$tmp/loops" ]; then
    echo "$0: the calls among $src/*.c go round in a circle:" >&2
    sed -n 's/^tsort: //p' "$tmp/loops" | grep -v 'input contains a loop' | sed 's/^/  /' >&2
    exit 1
fi
echo "no call cycle among $(cut -d' ' -f1 "$tmp/syms" | sort -u | wc -l) files of $src"
