#!/usr/bin/env bash
# Installs the Debian packages the synthetic camera needs to render offscreen:
# MuJoCo with MUJOCO_GL=osmesa loads libOSMesa.so.8 (libosmesa6). Idempotent: does
# nothing when every package is already installed. Needs root (or sudo) only when
# something is missing.
set -euo pipefail
log() { printf '[setup-system] %s\n' "$*"; }

PACKAGES=(libosmesa6)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  log "missing ${missing[*]} and not root (no sudo): install them as root"
  exit 1
fi

log "installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Install from the lists already on the machine; refresh them only when that fails
# (a fresh container, or an archive that moved on).
if ! "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; then
  "${SUDO[@]}" apt-get update -q >/dev/null
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
log "installed ${missing[*]}"
