#!/usr/bin/env bash
# Installs the Debian packages Armonía Hub needs to build, test and run its demo.
# Safe to run repeatedly: it asks apt only for what is missing (always on CI).
set -euo pipefail

PKGS=(build-essential cmake pkg-config clang-format
      libwebsockets-dev libev-dev libpq-dev libmsgpack-dev libjansson-dev libcmocka-dev openssl
      uthash-dev libcurl4-openssl-dev libssl-dev
      postgresql postgresql-client nodejs npm curl
      # the package check (scripts/package-check.sh): dpkg-shlibdeps for CPack's
      # dependencies, systemd-analyze to verify the unit, groff for the man page
      dpkg-dev systemd groff-base
      # nginx in front of two hubs (tests/integration/hub_nginx.test.mjs runs
      # deploy/nginx/armonia-hub.conf; Debian 12's package has ssl built in),
      # and the openssl command (listed above) that makes the test's certificate
      nginx
      # the fuzz targets (fuzz/): clang, libFuzzer with the sanitizer runtimes (only
      # recommended by clang), and llvm-symbolizer so a crash names its lines
      clang libclang-rt-14-dev llvm-14)

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# node and npm may come from outside Debian (a newer Node.js): accept them when present.
if command -v node >/dev/null && command -v npm >/dev/null; then
    keep=()
    for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || keep+=("$p"); done
    missing=("${keep[@]}")
fi

if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "deps: installing ${missing[*]}"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
