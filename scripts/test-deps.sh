#!/usr/bin/env bash
# What the tests need beyond Python packages: a Chromium for the browser tests, and Slurm's
# daemons and clients for the slurm backend's tests (scripts/slurm.sh starts the cluster).
# Installed with apt when we are root on Debian; otherwise those tests skip
# (or fail under STRATO_TEST_REQUIRE_SERVICES=1) and say why.
set -euo pipefail
SLURM_PACKAGES=(slurmctld slurmd slurm-client slurmdbd munge)
# The stream data servers' tests run the real proxies and stream with iperf3.
STREAM_PACKAGES=(haproxy stunnel4 iperf3)
need_chromium=0
need_slurm=0
need_stream=0
if [ ! -x /usr/bin/chromium ]; then need_chromium=1; fi
for pkg in "${SLURM_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    need_slurm=1
  fi
done
for pkg in "${STREAM_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    need_stream=1
  fi
done
if [ "$need_chromium$need_slurm$need_stream" = 000 ]; then exit 0; fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null; then
  [ "$need_chromium" = 1 ] && echo "note: no /usr/bin/chromium and not root: browser tests will be skipped" >&2
  [ "$need_slurm" = 1 ] && echo "note: Slurm not installed and not root: Slurm tests will be skipped" >&2
  [ "$need_stream" = 1 ] && echo "note: haproxy/stunnel4/iperf3 missing and not root: their stream tests will be skipped" >&2
  exit 0
fi
apt-get update -qq
if [ "$need_chromium" = 1 ]; then
  echo "installing chromium for the browser tests"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if [ "$need_slurm" = 1 ]; then
  echo "installing Slurm for the slurm backend's tests"
  # The image's policy-rc.d keeps the packages from starting their services (no systemd
  # here); scripts/slurm.sh starts the daemons.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${SLURM_PACKAGES[@]}" >/dev/null
fi
if [ "$need_stream" = 1 ]; then
  echo "installing haproxy, stunnel4 and iperf3 for the stream tests"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${STREAM_PACKAGES[@]}" >/dev/null
fi
