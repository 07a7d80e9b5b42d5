#!/usr/bin/env bash
# What the tests need beyond Python packages: a Chromium for the browser tests.
# Installed with apt when we are root on Debian; otherwise the browser tests skip
# (or fail under STRATO_TEST_REQUIRE_SERVICES=1) and say why.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "installing chromium for the browser tests"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "note: no /usr/bin/chromium and not root: browser tests will be skipped" >&2
fi
