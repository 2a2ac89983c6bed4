#!/usr/bin/env bash
# Installs the load generator of bench/proxy: h2load from Debian's nghttp2-client. Idempotent.
set -euo pipefail
if command -v h2load >/dev/null 2>&1; then
  echo "h2load present: $(h2load --version | head -n1)"
  exit 0
fi
SUDO=
if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends nghttp2-client >/dev/null
echo "h2load installed: $(h2load --version | head -n1)"
