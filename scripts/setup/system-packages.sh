#!/usr/bin/env bash
# system-packages.sh: Debian packages the host scripts and their tests need.
# Idempotent: runs `apt-get update` and `apt-get install` only when a package is missing.
#
#   rclone       R2 (S3) client of the backup/seed scripts (Debian's 1.60 is enough as a client)
#   the shellcheck package: lint run by the test suite on every script
#   e2fsprogs    mkfs.ext4 (prepare-scratch; tests format file images)
#   util-linux   blkid, flock, mountpoint
#   dosfstools   mkfs.vfat: tests plant a foreign filesystem that prepare-scratch must refuse
#   jq, curl     JSON from rclone; ComfyUI health check
#   openssh-client  tests run scripts over a real SSH client
#   openssh-server  engine tests log in to a real sshd (started by the tests on loopback, never as a service)
#   mmdebstrap, apt-utils  the simulated cloud's stock machine image and its package mirror (sim/image)
#   restic       only for `npm run bench:scale -- --engine restic` (the engine evaluation, docs/backups.md)
#   attr         setfattr: the tests' S3 server (versitygw, built by build-s3-server.sh) keeps ETags in
#                user xattrs; its start checks that the storage filesystem takes them
#
# Usage: system-packages.sh [--check]   (--check: only report, exit 1 when something is missing)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/common.sh
source "${here}/../lib/common.sh"

PACKAGES=(rclone shellcheck e2fsprogs util-linux dosfstools jq curl openssh-client openssh-server mmdebstrap apt-utils restic attr)
CHECK_ONLY=false
case ${1:-} in
  --check) CHECK_ONLY=true ;;
  -h | --help) print_help "$0"; exit 0 ;;
  "") ;;
  *) die "unknown option '$1' (see --help)" ;;
esac

missing_packages() {
  local p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || printf '%s\n' "$p"
  done
}

install_missing() {
  local missing=()
  mapfile -t missing < <(missing_packages)
  if ((${#missing[@]} == 0)); then
    log "system packages: all present (${PACKAGES[*]})"
    COMFYUME_STEP_RESULT=unchanged
    return 0
  fi
  if [[ $CHECK_ONLY == true ]]; then
    die "missing Debian packages: ${missing[*]}; run: sudo bash scripts/setup/system-packages.sh"
  fi
  if ((EUID != 0)); then
    command -v sudo >/dev/null 2>&1 || die "missing packages ${missing[*]} and not root: install them as root"
    SUDO=(sudo)
  else
    SUDO=()
  fi
  log "system packages: installing ${missing[*]}"
  retry 3 10 "${SUDO[@]}" apt-get update -qq
  # No service starts from a package install here (openssh-server's sshd is started by tests only).
  local policy=/usr/sbin/policy-rc.d placed=false
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
    "${SUDO[@]}" chmod 755 "$policy"
    placed=true
  fi
  retry 3 10 "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  [[ $placed == false ]] || "${SUDO[@]}" rm -f "$policy"
  mapfile -t missing < <(missing_packages)
  ((${#missing[@]} == 0)) || die "still missing after apt-get install: ${missing[*]}"
  COMFYUME_STEP_RESULT="installed"
}

report() {
  log "rclone: $(rclone version 2>/dev/null | head -n 1)"
  log "shellcheck: $(shellcheck --version | sed -n 's/^version: //p')"
  log "mkfs.ext4: $(command -v mkfs.ext4 || echo missing); blkid: $(command -v blkid || echo missing)"
}

SUDO=()
step system-packages install_missing
step versions report
step_summary
