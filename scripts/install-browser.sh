#!/usr/bin/env sh
# What the browser-call tests need besides Python packages: Debian's chromium (driven
# over its DevTools protocol; no browser download of its own) and iproute2 (the tests
# run the browser and the server in a throwaway loopback-only network namespace).
# Installs them when missing and we are root; otherwise says so, and those tests skip.
set -eu
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v ip >/dev/null 2>&1 || missing="$missing iproute2"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "install-browser: not root, not installing:$missing (the browser-call tests will be skipped)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser: no apt-get; install$missing yourself (the browser-call tests will be skipped)"
    exit 0
fi
echo "install-browser: installing$missing"
apt-get update -q
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
