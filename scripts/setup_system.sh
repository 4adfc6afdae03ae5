#!/usr/bin/env bash
# Debian packages the tests need: Fashion-MNIST data, Redis and PostgreSQL servers, Chromium for the docs check, Prometheus (+ promtool) for the monitoring tests.
# Idempotent: installs only what is missing; needs root (CI runs as root) or passwordless sudo.
set -euo pipefail
pkgs=(dataset-fashion-mnist redis-server postgresql chromium chromium-driver prometheus)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
