#!/usr/bin/env bash
# Installs what the guard console's browser test needs (clients/js/test/
# console.browser.test.js): Debian's chromium, when /usr/bin/chromium is
# missing, and the npm packages of clients/js (playwright-core among its
# devDependencies). Safe to run again: it installs only what is missing.
#
#   scripts/browser-deps.sh
#
# apt-get needs root; as another user it goes through sudo. Playwright's own
# browser downloads are never used: the test drives the Debian build.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

readonly CHROMIUM=/usr/bin/chromium

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        echo "browser-deps: need root or sudo to run: $*" >&2
        exit 1
    fi
}

if [ -x "$CHROMIUM" ]; then
    echo "browser-deps: $CHROMIUM is installed"
else
    echo "browser-deps: installing Debian's chromium"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        chromium fonts-dejavu-core
    [ -x "$CHROMIUM" ] || { echo "browser-deps: $CHROMIUM still missing after apt-get" >&2; exit 1; }
fi

cd "$root/clients/js"
# Every devDependency (playwright-core, typescript for the type test, ...)
# must resolve: a checkout installed before one was added gets it now.
if node -e 'const p = require("./package.json");
for (const d of Object.keys(p.devDependencies ?? {})) require.resolve(`${d}/package.json`);' 2>/dev/null; then
    echo "browser-deps: the npm packages of clients/js are installed"
else
    echo "browser-deps: installing clients/js npm packages (playwright-core, typescript, ...)"
    # Keep Playwright from fetching its own browsers: the test uses $CHROMIUM.
    export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
    if [ -f package-lock.json ]; then
        npm ci --no-audit --no-fund --loglevel=error
    else
        npm install --no-audit --no-fund --loglevel=error
    fi
fi
"$CHROMIUM" --version
