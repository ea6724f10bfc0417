#!/usr/bin/env bash
# ops/deps.sh -- install riskstream's build and runtime dependencies from
# Debian's packages (Debian 12).  Idempotent: does nothing when all present.
# Run as root (or with sudo available).
#   ops/deps.sh --bench   also the optional packages of the end-to-end
#                         benchmark's Python peer (`ops/bench.sh e2e --peer`);
#                         neither the build nor the tests need them.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config git
  librdkafka-dev libhiredis-dev libopenblas-dev
  libprotobuf-c-dev protobuf-c-compiler
  libyaml-dev libjansson-dev libmicrohttpd-dev libxxhash-dev libcmocka-dev libcurl4-openssl-dev
  libssl-dev openssl
  libxgboost-dev tzdata
  redis-server redis-tools kcat jq curl prometheus
  chromium
)

# Only for `ops/bench.sh e2e --peer` (../shared/peer/python_peer.py).
BENCH_PKGS=(python3-torch python3-confluent-kafka python3-redis)
if [ "${1:-}" = "--bench" ]; then PKGS+=("${BENCH_PKGS[@]}"); fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PKGS[@]} packages present"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's redis-server package may start a system instance; we never use
# it (our scripts start private servers), so leave it alone.
echo "deps: done"
