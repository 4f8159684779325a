#!/usr/bin/env bash
# Opens report.html of the shipped example reports (reports/demo, reports/example-planted) in
# headless Chromium at 375 and 1400 px wide; fails (exit 1) on any console error, broken image or
# element overflowing the viewport, and saves screenshots as target/browser-check/<report>-<width>.png
# (BROWSER_CHECK_OUT to change). Installs Debian's `chromium` package when it is missing and this
# runs as root. Exit 3: the check cannot run here (no Chromium and no way to install it, or no
# Node); CI logs that and goes on.
#   scripts/browser-check.sh [report.html...]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${BROWSER_CHECK_OUT:-target/browser-check}"
pages=("$@")
if [ ${#pages[@]} -eq 0 ]; then
    pages=(reports/demo/report.html reports/example-planted/report.html)
fi

find_chromium() {
    for bin in "${CHROMIUM:-}" chromium chromium-browser google-chrome; do
        if [ -n "$bin" ] && command -v "$bin" >/dev/null 2>&1; then
            command -v "$bin"
            return 0
        fi
    done
    return 1
}

if ! chromium=$(find_chromium); then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "== installing Debian's chromium package"
        if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >&2; then
            echo "browser check skipped: chromium could not be installed" >&2
            exit 3
        fi
    fi
    if ! chromium=$(find_chromium); then
        echo "browser check skipped: no Chromium (install Debian's chromium package, or set CHROMIUM)" >&2
        exit 3
    fi
fi
if ! command -v node >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing Debian's nodejs package"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs; } >&2 || true
fi
if ! command -v node >/dev/null 2>&1; then
    echo "browser check skipped: needs Node.js 18 or newer (Debian's nodejs package)" >&2
    exit 3
fi
echo "== browser check with $("$chromium" --version 2>/dev/null | head -n1)"
exec node scripts/browser-check.js --chromium "$chromium" --out "$out" "${pages[@]}"
