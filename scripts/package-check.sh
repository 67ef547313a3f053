#!/usr/bin/env bash
# Builds the .deb from a finished build tree and checks what an operator
# gets: the files where Debian puts them (the demo tenant's SQL apart from
# the production schema), the runtime dependencies on Debian 12's library
# packages, a binary that runs, a man page without roff warnings, and a
# systemd unit that `systemd-analyze verify` accepts with no complaint.
#
#   scripts/package-check.sh BUILD_DIR VERSION
#
# CTest runs it as package.deb. Needs dpkg-dev (dpkg-shlibdeps, for CPack),
# systemd (systemd-analyze) and groff-base; scripts/deps.sh installs them.
set -euo pipefail
build=$(cd "$1" && pwd)
version=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() {
    echo "package-check: $*" >&2
    exit 1
}

cpack --config "$build/CPackConfig.cmake" -G DEB -B "$work/out" >"$work/cpack.log" 2>&1 ||
    { cat "$work/cpack.log"; fail "cpack -G DEB failed"; }
debs=("$work"/out/*.deb)
[ ${#debs[@]} -eq 1 ] && [ -f "${debs[0]}" ] || fail "expected one .deb in $work/out, got: ${debs[*]}"
deb=${debs[0]}
echo "package-check: built $(basename "$deb")"

# Control fields.
field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = armonia-hub ] || fail "Package is '$(field Package)', expected armonia-hub"
[ "$(field Version)" = "$version" ] || fail "Version is '$(field Version)', expected $version"
[ "$(field Architecture)" = "$(dpkg --print-architecture)" ] || fail "Architecture is '$(field Architecture)'"
depends=$(field Depends)
echo "package-check: Depends: $depends"
for pkg in libwebsockets17 libwebsockets-evlib-ev libpq5 libcurl4 libssl3 libjansson4 libmsgpackc2 libev4 libc6; do
    grep -Eq "(^|, )$pkg( |,|$)" <<<"$depends" || fail "Depends lacks $pkg: $depends"
done
for pkg in libcmocka0 postgresql nodejs; do
    grep -Eq "(^|, )$pkg( |,|$)" <<<"$depends" && fail "Depends names $pkg, which only the tests need: $depends"
done

# What the README's production guide runs first (`apt install ./….deb`):
# apt finds every dependency in Debian's archive (a simulation: nothing
# is installed).
apt-get install --simulate "$deb" >"$work/apt.log" 2>&1 ||
    { cat "$work/apt.log"; fail "apt cannot install $deb"; }
grep -q '^Inst armonia-hub ' "$work/apt.log" || { cat "$work/apt.log"; fail "apt would not install armonia-hub"; }

# Files.
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's#^\./#/#' >"$work/files"
want=(/usr/bin/armonia-hub
      /usr/lib/systemd/system/armonia-hub.service
      /usr/share/man/man8/armonia-hub.8.gz
      /usr/share/doc/armonia-hub/examples/env
      /usr/share/armonia-hub/demo/demo_tenant.sql
      /usr/share/armonia-hub/roles/hub_login.sql)
src=$(grep -m1 '^CMAKE_HOME_DIRECTORY:' "$build/CMakeCache.txt" | cut -d= -f2)
for sql in "$src"/schema/[0-9][0-9][0-9]_*.sql; do
    want+=("/usr/share/armonia-hub/schema/$(basename "$sql")")
done
for f in "${want[@]}"; do
    grep -qx "$f" "$work/files" || { cat "$work/files"; fail "the package lacks $f"; }
done
grep -q '^/usr/share/armonia-hub/schema/.*demo' "$work/files" &&
    fail "the demo tenant's SQL sits beside the production schema"
grep -E '^/usr/(bin|lib/systemd|share)/' "$work/files" >/dev/null || fail "no files under /usr"
grep -Ev '^/usr/?|^/$' "$work/files" | grep . && fail "files outside /usr (listed above)"

# What is inside.
dpkg-deb -x "$deb" "$work/root"
"$work/root/usr/bin/armonia-hub" --version | grep -qx "armonia-hub $version" ||
    fail "the packaged binary does not say armonia-hub $version"
unit=$work/root/usr/lib/systemd/system/armonia-hub.service
grep -qx 'ExecStart=/usr/bin/armonia-hub' "$unit" || fail "the unit does not start /usr/bin/armonia-hub"
for line in Type=notify NotifyAccess=main 'EnvironmentFile=/etc/armonia-hub/env' DynamicUser=yes \
    ProtectSystem=strict NoNewPrivileges=yes CapabilityBoundingSet= 'ExecReload=/bin/kill -HUP $MAINPID'; do
    grep -qxF "$line" "$unit" || fail "the unit lacks '$line'"
done
grep -Eq '^WatchdogSec=[1-9]' "$unit" || fail "the unit sets no WatchdogSec"
grep -Eq '^LimitNOFILE=[1-9]' "$unit" || fail "the unit sets no LimitNOFILE"
grep -Eq '^RestrictAddressFamilies=' "$unit" || fail "the unit does not restrict address families"

# systemd-analyze verify checks that ExecStart exists: point it at the
# extracted binary, and take any output (warnings too) as a failure.
sed "s#^ExecStart=/usr/bin/armonia-hub#ExecStart=$work/root/usr/bin/armonia-hub#" "$unit" \
    >"$work/armonia-hub.service"
if ! out=$(cd "$work" && systemd-analyze verify --man=no "$work/armonia-hub.service" 2>&1) || [ -n "$out" ]; then
    echo "$out" >&2
    fail "systemd-analyze verify does not accept the unit"
fi

# The man page: every section an operator looks for, every setting, no roff warning.
zcat "$work/root/usr/share/man/man8/armonia-hub.8.gz" >"$work/armonia-hub.8"
for section in NAME SYNOPSIS DESCRIPTION OPTIONS ENVIRONMENT SIGNALS 'EXIT STATUS' FILES; do
    grep -qx "\.SH $section" "$work/armonia-hub.8" || fail "the man page has no $section section"
done
for name in $("$work/root/usr/bin/armonia-hub" --print-env-example | sed -n 's/^#\([A-Z][A-Z0-9_]*\)=.*/\1/p'); do
    grep -qx "\.B $name" "$work/armonia-hub.8" || fail "the man page does not document $name"
done
warnings=$(groff -man -Tutf8 -ww -z "$work/armonia-hub.8" 2>&1)
[ -z "$warnings" ] || { echo "$warnings" >&2; fail "groff warns about the man page"; }

# The example environment file: every line a comment, every setting there.
env=$work/root/usr/share/doc/armonia-hub/examples/env
grep -Ev '^(#.*)?$' "$env" && fail "the example environment file sets something (lines above)"
cmp -s "$env" <("$work/root/usr/bin/armonia-hub" --print-env-example) ||
    fail "the example environment file is not what --print-env-example prints"

echo "package-check: ok"
