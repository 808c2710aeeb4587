#!/usr/bin/env bash
# backup-instance.sh: hourly backup of the instance's identity and config into the SFS cache.
#
# Usage: backup-instance.sh [options]        (run by cron; see install-backup-cron.sh)
#
#   --name NAME          backup set name, stable across re-created instances
#                        (env BACKUP_NAME; default verda-worker)
#   --sfs DIR            SFS mount point (env SFS_MOUNT; default ${COMFYUME_ROOT}/mnt/sfs)
#   --dest DIR           backup root (env BACKUP_DEST; default <sfs>/cache/backups/<name>)
#   --project-dir DIR    project checkout (env PROJECT_DIR; default ${COMFYUME_ROOT}/home/dev/comfyume)
#   --skip ITEM          leave out tailscale, ssh-host-keys, config or project (repeatable)
#   --min-free-mb N      free space required on the destination beyond the backup's own
#                        size (env MIN_FREE_MB; default 1024)
#   --log FILE           log file (env BACKUP_LOG; default ${COMFYUME_ROOT}/var/log/comfyume/backup-instance.log)
#   --status FILE        status file (env BACKUP_STATUS; default ${COMFYUME_ROOT}/var/lib/comfyume/backup-instance.status)
#   --lock FILE          lock file (env BACKUP_LOCK; default ${COMFYUME_ROOT}/run/lock/comfyume-backup-instance.lock)
#   --help
#
# Items (deterministic tar.gz, so an unchanged item gives identical bytes):
#   tailscale.tar.gz      /var/lib/tailscale (node identity; restored before tailscaled starts)
#   ssh-host-keys.tar.gz  /etc/ssh/ssh_host_*
#   config.tar.gz         the project's .env (mode 0600 kept)
#   project.tar.gz        the project without data/, node_modules/, __pycache__/ and .env
# Each run writes <dest>/<UTC stamp>.partial/, verifies every tarball (readable, not empty)
# and a MANIFEST.sha256, then renames it to <dest>/<stamp>/ and points <dest>/latest at it.
# When nothing changed since the latest snapshot, the new copy is dropped ("unchanged").
# Never deletes an older snapshot.
#
# Overlapping runs are refused (flock). The nightly backup-to-r2.sh holds this same lock while it
# backs up the cache set (so no snapshot changes under it); an hourly run then is refused and
# its message names the holder (script, pid, since). Low disk space, a missing source or an unwritable
# SFS is a logged failure with exit 1, and the status file says so:
#   last_run, last_result (ok|unchanged|failed), last_success, last_snapshot, message
#
# Exit codes: 0 backed up (or unchanged) and verified; 1 any failure.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/common.sh
source "${here}/../lib/common.sh"

ROOT=${COMFYUME_ROOT:-}
BACKUP_NAME=${BACKUP_NAME:-verda-worker}
SFS_MOUNT=${SFS_MOUNT:-${ROOT}/mnt/sfs}
BACKUP_DEST=${BACKUP_DEST:-}
PROJECT_DIR=${PROJECT_DIR:-${ROOT}/home/dev/comfyume}
MIN_FREE_MB=${MIN_FREE_MB:-1024}
BACKUP_LOG=${BACKUP_LOG:-${ROOT}/var/log/comfyume/backup-instance.log}
BACKUP_STATUS=${BACKUP_STATUS:-${ROOT}/var/lib/comfyume/backup-instance.status}
BACKUP_LOCK=${BACKUP_LOCK:-${ROOT}/run/lock/comfyume-backup-instance.lock}
SKIP=" "

while (($#)); do
  case $1 in
    --name) need_value "$@"; BACKUP_NAME=$2; shift 2 ;;
    --sfs) need_value "$@"; SFS_MOUNT=$2; shift 2 ;;
    --dest) need_value "$@"; BACKUP_DEST=$2; shift 2 ;;
    --project-dir) need_value "$@"; PROJECT_DIR=$2; shift 2 ;;
    --skip) need_value "$@"; SKIP+="$2 "; shift 2 ;;
    --min-free-mb) need_value "$@"; MIN_FREE_MB=$2; shift 2 ;;
    --log) need_value "$@"; BACKUP_LOG=$2; shift 2 ;;
    --status) need_value "$@"; BACKUP_STATUS=$2; shift 2 ;;
    --lock) need_value "$@"; BACKUP_LOCK=$2; shift 2 ;;
    -h | --help) print_help "$0"; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
BACKUP_DEST=${BACKUP_DEST:-${SFS_MOUNT}/cache/backups/${BACKUP_NAME}}
[[ $BACKUP_NAME =~ ^[A-Za-z0-9._-]+$ ]] || die "BACKUP_NAME '${BACKUP_NAME}' may only hold letters, digits, dot, dash and underscore"
[[ $MIN_FREE_MB =~ ^[0-9]+$ ]] || die "MIN_FREE_MB '${MIN_FREE_MB}' is not a whole number of MiB"

log_to_file "$BACKUP_LOG"
STAMP=$(date -u +%Y-%m-%dT%H%M%SZ)
PARTIAL="${BACKUP_DEST}/${STAMP}.partial"
RESULT=failed
SNAPSHOT=""

previous_status() { sed -n "s/^$1=//p" "$BACKUP_STATUS" 2>/dev/null | tail -n 1; }

# Written on every exit, success or not, so a silent stop cannot look like a success.
finish() {
  local rc=${COMFYUME_EXIT_CODE:-1} last_success message
  last_success=$(previous_status last_success)
  if ((rc == 0)); then
    last_success=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    message="ok"
  else
    RESULT=failed
    message="failed in step '${COMFYUME_CURRENT_STEP}' (exit ${rc}); see ${BACKUP_LOG}"
    # Our own unfinished copy is never a snapshot; the older snapshots stay untouched.
    [[ -d $PARTIAL ]] && rm -rf -- "$PARTIAL"
  fi
  write_kv_file "$BACKUP_STATUS" "last_run=$(date -u +%Y-%m-%dT%H:%M:%SZ)" "last_result=${RESULT}" \
    "last_success=${last_success}" "last_snapshot=${SNAPSHOT:-$(previous_status last_snapshot)}" \
    "message=${message}" || log "cannot write the status file ${BACKUP_STATUS}"
}
on_exit finish
cause_last_on_exit

lock() { take_lock "$BACKUP_LOCK"; }

item_enabled() { [[ $SKIP != *" $1 "* ]]; }

check_space() {
  [[ -d $SFS_MOUNT ]] || die "SFS mount point ${SFS_MOUNT} does not exist; run mount-sfs.sh first"
  mkdir -p "$BACKUP_DEST" || die "cannot create ${BACKUP_DEST} (SFS read-only or not mounted?)"
  local need_kb=0 kb path
  for path in "${ROOT}/var/lib/tailscale" "${ROOT}/etc/ssh" "$PROJECT_DIR"; do
    [[ -e $path ]] || continue
    kb=$(du -sk --exclude=data --exclude=node_modules -- "$path" 2>/dev/null | awk '{ print $1 }')
    need_kb=$((need_kb + ${kb:-0}))
  done
  require_free_mb "$BACKUP_DEST" $((MIN_FREE_MB + need_kb / 1024 + 1)) "an instance backup (${need_kb} KiB of sources + ${MIN_FREE_MB} MiB margin)"
}

# tar_item NAME DIR PATHS...: deterministic tar.gz of PATHS (relative to DIR) into the partial dir.
tar_item() {
  local name=$1 dir=$2 out
  shift 2
  out="${PARTIAL}/${name}.tar.gz"
  tar --sort=name --numeric-owner --exclude='./data' --exclude='./node_modules' \
    --exclude='__pycache__' --exclude='./.env' -C "$dir" -cf - "$@" | gzip -n >"$out" ||
    die "writing ${out} failed (disk full or unreadable source?)"
}

make_tarballs() {
  mkdir -p "$PARTIAL"
  local n=0
  if item_enabled tailscale; then
    [[ -d ${ROOT}/var/lib/tailscale ]] || die "${ROOT}/var/lib/tailscale is missing; nothing to back up for the Tailscale identity (use --skip tailscale if this host has none)"
    tar_item tailscale "${ROOT}/var/lib" tailscale
    n=$((n + 1))
  fi
  if item_enabled ssh-host-keys; then
    local keys=()
    shopt -s nullglob
    keys=("${ROOT}/etc/ssh"/ssh_host_*)
    shopt -u nullglob
    ((${#keys[@]} > 0)) || die "no ${ROOT}/etc/ssh/ssh_host_* keys found (use --skip ssh-host-keys if intended)"
    tar_item ssh-host-keys "${ROOT}/etc/ssh" "${keys[@]##*/}"
    n=$((n + 1))
  fi
  if item_enabled config; then
    [[ -f ${PROJECT_DIR}/.env ]] || die "${PROJECT_DIR}/.env is missing (use --skip config if intended)"
    tar --sort=name --numeric-owner -C "$PROJECT_DIR" -cf - .env | gzip -n >"${PARTIAL}/config.tar.gz" ||
      die "writing ${PARTIAL}/config.tar.gz failed"
    n=$((n + 1))
  fi
  if item_enabled project; then
    [[ -d $PROJECT_DIR ]] || die "project directory ${PROJECT_DIR} is missing (use --skip project if intended)"
    tar_item project "$PROJECT_DIR" .
    n=$((n + 1))
  fi
  ((n > 0)) || die "every item was skipped: nothing to back up"
}

verify_tarballs() {
  local f entries
  for f in "$PARTIAL"/*.tar.gz; do
    entries=$(tar -tzvf "$f" 2>/dev/null | grep -c '^-' || true)
    ((entries > 0)) || die "${f} holds no files (an empty backup is a failed backup)"
    log "$(basename "$f"): ${entries} file(s), $(stat -c %s "$f") bytes"
  done
  (cd "$PARTIAL" && sha256sum -- *.tar.gz >MANIFEST.sha256.tmp && mv MANIFEST.sha256.tmp MANIFEST.sha256) ||
    die "cannot write ${PARTIAL}/MANIFEST.sha256"
  (cd "$PARTIAL" && sha256sum --quiet -c MANIFEST.sha256) || die "${PARTIAL}: a tarball does not match its checksum right after writing"
}

publish() {
  local latest="" tmp
  [[ -f ${BACKUP_DEST}/latest ]] && latest=$(<"${BACKUP_DEST}/latest")
  if [[ -n $latest && -f ${BACKUP_DEST}/${latest}/MANIFEST.sha256 ]] &&
    cmp -s "${BACKUP_DEST}/${latest}/MANIFEST.sha256" "${PARTIAL}/MANIFEST.sha256"; then
    # Identical bytes to the latest snapshot: the copy we just made adds nothing.
    rm -rf -- "$PARTIAL"
    RESULT=unchanged
    SNAPSHOT=$latest
    COMFYUME_STEP_RESULT=unchanged
    log "nothing changed since snapshot ${latest}"
    return 0
  fi
  [[ ! -e ${BACKUP_DEST}/${STAMP} ]] || die "${BACKUP_DEST}/${STAMP} already exists; refusing to overwrite it"
  mv -- "$PARTIAL" "${BACKUP_DEST}/${STAMP}"
  tmp=$(mktemp "${BACKUP_DEST}/latest.XXXXXX")
  printf '%s\n' "$STAMP" >"$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "${BACKUP_DEST}/latest"
  RESULT=ok
  SNAPSHOT=$STAMP
  COMFYUME_STEP_RESULT=changed
  log "snapshot ${BACKUP_DEST}/${STAMP} written and verified"
}

step lock lock
step disk-space check_space
step tarballs make_tarballs
step verify verify_tarballs
step publish publish
step_summary
