#!/usr/bin/env bash
# mount-sfs.sh: mount the Verda shared file system (SFS, NFS) and make it survive reboots.
#
# Usage: mount-sfs.sh --target HOST:/PSEUDO-PATH [options]
#
#   --target HOST:/PATH   NFS mount target as read from the Verda API for this run
#                         (env SFS_TARGET; required, never hard-coded: the pseudo path
#                         changes when the SFS is renamed or re-created)
#   --mount-point DIR     where to mount (env SFS_MOUNT; default ${COMFYUME_ROOT}/mnt/sfs)
#   --options OPTS        NFS options (env SFS_OPTIONS; default nconnect=16)
#   --fstab FILE          fstab to maintain (env FSTAB; default ${COMFYUME_ROOT}/etc/fstab)
#   --no-fstab            do not touch fstab
#   --sfs-id ID           the Verda volume id of the SFS the config names (env SFS_ID): the
#                         mounted SFS must carry it in <mount>/.comfyume/sfs-id, else the mount
#                         is undone and the script fails (testing never mounts production's SFS)
#   --write-marker        with --sfs-id: write the marker when the SFS has none (at seeding, by
#                         the month's loader, which got the SFS by id); never overwrites another id
#   --help                this text
#
# Steps: validate the target; mount it (3 attempts) unless already mounted from the same
# target; check the SFS identity marker (with --sfs-id); write one fstab line "<target> <dir> nfs <opts>,nofail,_netdev 0 0" (idempotent;
# an older line for the same mount point is replaced and the old fstab kept as a .bak);
# verify with `mountpoint` and a write/read probe file.
#
# Environment for tests or unusual hosts: COMFYUME_ROOT (prefix for /etc and /mnt),
# MOUNT_CMD (mount), UMOUNT_CMD (umount), MOUNTPOINT_CMD (mountpoint), PROC_MOUNTS (/proc/mounts),
# SFS_MOUNT_ATTEMPTS (3), SFS_MOUNT_RETRY_DELAY (5).
#
# Exit codes: 0 mounted and verified; 1 any failure (the log names the step and the fix).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/common.sh
source "${here}/../lib/common.sh"

ROOT=${COMFYUME_ROOT:-}
SFS_TARGET=${SFS_TARGET:-}
SFS_MOUNT=${SFS_MOUNT:-${ROOT}/mnt/sfs}
SFS_OPTIONS=${SFS_OPTIONS:-nconnect=16}
FSTAB=${FSTAB:-${ROOT}/etc/fstab}
WRITE_FSTAB=true
MOUNT_CMD=${MOUNT_CMD:-mount}
MOUNTPOINT_CMD=${MOUNTPOINT_CMD:-mountpoint}
UMOUNT_CMD=${UMOUNT_CMD:-umount}
SFS_ID=${SFS_ID:-}
WRITE_MARKER=false
# Set by do_mount when this run mounted the SFS (only then does a refusal unmount it).
MOUNTED_NOW=false
PROC_MOUNTS=${PROC_MOUNTS:-/proc/mounts}
SFS_MOUNT_ATTEMPTS=${SFS_MOUNT_ATTEMPTS:-3}
SFS_MOUNT_RETRY_DELAY=${SFS_MOUNT_RETRY_DELAY:-5}

while (($#)); do
  case $1 in
    --target) need_value "$@"; SFS_TARGET=$2; shift 2 ;;
    --mount-point) need_value "$@"; SFS_MOUNT=$2; shift 2 ;;
    --options) need_value "$@"; SFS_OPTIONS=$2; shift 2 ;;
    --fstab) need_value "$@"; FSTAB=$2; shift 2 ;;
    --no-fstab) WRITE_FSTAB=false; shift ;;
    --sfs-id) need_value "$@"; SFS_ID=$2; shift 2 ;;
    --write-marker) WRITE_MARKER=true; shift ;;
    -h | --help) print_help "$0"; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done

validate() {
  [[ -n $SFS_TARGET ]] || die "SFS_TARGET is empty: pass --target HOST:/PSEUDO-PATH from the Verda API (the SFS 'mount command' target)"
  [[ $SFS_TARGET =~ ^[A-Za-z0-9.-]+:/[^[:space:]]+$ ]] ||
    die "SFS_TARGET '${SFS_TARGET}' is not HOST:/PATH (e.g. nfs.fin-01.datacrunch.io:/SFS-Model-Vault-...-<hash>); pass only the target, not the whole mount command"
  [[ $SFS_OPTIONS =~ ^[A-Za-z0-9_=,.-]+$ ]] || die "SFS_OPTIONS '${SFS_OPTIONS}' is not a comma-separated option list"
  [[ $SFS_MOUNT == /* ]] || die "SFS_MOUNT '${SFS_MOUNT}' must be an absolute path"
  if [[ -n $SFS_ID ]]; then
    [[ $SFS_ID =~ ^[A-Za-z0-9][A-Za-z0-9-]{0,63}$ ]] || die "SFS_ID '${SFS_ID}' is not a Verda volume id; pass --sfs-id with the SFS's id (the month stack's sfsId output)"
  elif [[ $WRITE_MARKER == true ]]; then
    die "--write-marker needs --sfs-id ID (the SFS's Verda volume id)"
  fi
  require_cmd "$MOUNT_CMD" "$MOUNTPOINT_CMD"
}

# current_source: the device/target currently mounted at SFS_MOUNT, if any.
current_source() {
  awk -v mp="$SFS_MOUNT" '$2 == mp { src = $1 } END { if (src != "") print src }' "$PROC_MOUNTS" 2>/dev/null || true
}

do_mount() {
  mkdir -p "$SFS_MOUNT"
  if "$MOUNTPOINT_CMD" -q "$SFS_MOUNT"; then
    local src
    src=$(current_source)
    if [[ -n $src && $src != "$SFS_TARGET" ]]; then
      die "${SFS_MOUNT} is already mounted from '${src}', not from SFS_TARGET '${SFS_TARGET}' (pseudo path changed?); unmount it (umount ${SFS_MOUNT}) after checking nothing uses it, then re-run"
    fi
    log "${SFS_MOUNT} already mounted from ${src:-$SFS_TARGET}"
    COMFYUME_STEP_RESULT=unchanged
    return 0
  fi
  local attempt=1 out delay=$SFS_MOUNT_RETRY_DELAY
  while true; do
    if out=$("$MOUNT_CMD" -t nfs -o "$SFS_OPTIONS" "$SFS_TARGET" "$SFS_MOUNT" 2>&1); then
      break
    fi
    if ((attempt >= SFS_MOUNT_ATTEMPTS)); then
      die "cannot mount SFS ${SFS_TARGET} at ${SFS_MOUNT} after ${attempt} attempts: ${out:-no message}. Check: the SFS is shared with this instance (Verda console: SFS share settings), the pseudo path is current (re-read it from the Verda API), the instance reaches the NFS server (private network), nfs-common is installed"
    fi
    log "mount attempt ${attempt}/${SFS_MOUNT_ATTEMPTS} failed: ${out:-no message}; retrying in ${delay}s"
    sleep "$delay"
    attempt=$((attempt + 1))
  done
  MOUNTED_NOW=true
  COMFYUME_STEP_RESULT=changed
}

# refuse_sfs MESSAGE: undoes this run's mount (an earlier mount is left as it was), then fails.
refuse_sfs() {
  local undo="it was mounted before this run and is left mounted: unmount it (umount ${SFS_MOUNT}) once nothing uses it"
  if [[ $MOUNTED_NOW == true ]]; then
    if "$UMOUNT_CMD" "$SFS_MOUNT"; then undo="this run's mount was undone (umount ${SFS_MOUNT})"; else undo="umount ${SFS_MOUNT} failed: unmount it by hand"; fi
  fi
  die "$1; ${undo}"
}

# check_identity: the mounted SFS is the one the config names (marker <mount>/.comfyume/sfs-id).
check_identity() {
  if [[ -z $SFS_ID ]]; then
    COMFYUME_STEP_RESULT=skipped
    return 0
  fi
  local marker="${SFS_MOUNT}/.comfyume/sfs-id" found
  if [[ -f $marker ]]; then
    found=$(head -n 1 "$marker" | tr -d '[:space:]')
    if [[ $found != "$SFS_ID" ]]; then
      refuse_sfs "refusing the SFS mounted from ${SFS_TARGET}: its marker ${marker} says it is SFS ${found}, not ${SFS_ID} as the config names. Another environment's SFS (production's?) answers at this target: check the month stack's SFS (scripts/pulumi stack output sfsId, comfyume:sfs.adopt) and the SFS's pseudo path in the Verda console"
    fi
    log "SFS identity ${SFS_ID} confirmed by ${marker}"
    COMFYUME_STEP_RESULT=unchanged
    return 0
  fi
  if [[ $WRITE_MARKER != true ]]; then
    refuse_sfs "no SFS identity marker (${marker}) on the SFS mounted from ${SFS_TARGET}, so it cannot be proven to be SFS ${SFS_ID}. The month's seeding writes it (seed.loader); for an adopted SFS, after checking in the Verda console that this pseudo path belongs to SFS ${SFS_ID}, write it once on a host that mounts it: mount-sfs.sh --target ${SFS_TARGET} --sfs-id ${SFS_ID} --write-marker --no-fstab"
  fi
  mkdir -p "${SFS_MOUNT}/.comfyume" || die "cannot create ${SFS_MOUNT}/.comfyume"
  if ! printf '%s\n' "$SFS_ID" >"${marker}.tmp.$$" || ! mv -f "${marker}.tmp.$$" "$marker"; then
    die "cannot write ${marker}"
  fi
  log "SFS identity marker written: ${marker} = ${SFS_ID}"
  COMFYUME_STEP_RESULT=changed
}

write_fstab() {
  if [[ $WRITE_FSTAB != true ]]; then
    COMFYUME_STEP_RESULT=skipped
    return 0
  fi
  local line
  line="${SFS_TARGET} ${SFS_MOUNT} nfs ${SFS_OPTIONS},nofail,_netdev 0 0"
  COMFYUME_STEP_RESULT=$(fstab_set_entry "$FSTAB" "$SFS_MOUNT" "$line")
  log "fstab ${FSTAB}: ${COMFYUME_STEP_RESULT}: ${line}"
}

verify() {
  "$MOUNTPOINT_CMD" -q "$SFS_MOUNT" || die "${SFS_MOUNT} is not a mount point after mounting"
  local probe token
  probe="${SFS_MOUNT}/.comfyume-probe-$(hostname)-$$"
  token="probe-$(date +%s%N)-${RANDOM}"
  printf '%s\n' "$token" >"$probe" || die "cannot write to ${SFS_MOUNT} (read-only export or permissions?)"
  sync "$probe" 2>/dev/null || true
  [[ $(cat "$probe") == "$token" ]] || die "read-back of ${probe} returned other bytes"
  # The probe is our own file, created above: removing it is safe.
  rm -f "$probe"
  log "SFS ${SFS_TARGET} mounted at ${SFS_MOUNT} and writable"
}

step validate validate
step mount do_mount
step identity check_identity
step fstab write_fstab
step verify verify
step_summary
