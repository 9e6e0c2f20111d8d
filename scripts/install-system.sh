#!/usr/bin/env sh
# What the tests need besides Python packages. The STT accuracy tests: recordings of real
# speech from Debian's asterisk-core-sounds packages. The browser-call tests: Debian's chromium (driven
# over its DevTools protocol; no browser download of its own) and iproute2 (the tests
# run the browser and the server in a throwaway loopback-only network namespace).
# Installs them when missing and we are root; otherwise says so, and those tests skip.
set -eu
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v ip >/dev/null 2>&1 || missing="$missing iproute2"
# Real human speech (Allison Smith's prompts, CC-BY-SA) with its transcript, for the STT tests.
[ -d /usr/share/asterisk/sounds/en_US_f_Allison ] || missing="$missing asterisk-core-sounds-en-wav"
[ -f /usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz ] || missing="$missing asterisk-core-sounds-en"
# A real Prometheus scrapes /metrics in the metrics test.
command -v prometheus >/dev/null 2>&1 || missing="$missing prometheus"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "install-system: not root, not installing:$missing (the tests that need them will be skipped)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-system: no apt-get; install$missing yourself (the tests that need them will be skipped)"
    exit 0
fi
echo "install-system: installing$missing"
apt-get update -q
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
