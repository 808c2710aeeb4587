#!/usr/bin/env bash
# backup-mello.sh: back up the workshop users' files on mello to R2, verified.
#
# Usage: printf 'R2_ACCESS_KEY_ID=...\nR2_SECRET_ACCESS_KEY=...\n' |
#          backup-mello.sh --r2-endpoint https://<account-id>.eu.r2.cloudflarestorage.com [options]
#
#   --r2-endpoint URL   R2 S3 endpoint (env R2_ENDPOINT; required)
#   --data-dir DIR      user data root (env DATA_DIR; default ${COMFYUME_ROOT}/home/dev/comfyume/data)
#   --dirs LIST         comma-separated subdirectories to back up (env BACKUP_DIRS;
#                       default user_data,outputs,inputs; missing ones are an error)
#   --quick             leave out outputs (the biggest and least precious)
#   --bucket B          (env R2_USER_FILES_BUCKET; default comfyume-user-files-backups)
#   --prefix P          key prefix (env R2_PREFIX; default mello)
#   --verify-only         upload nothing: verify the newest manifest of each set against R2
#   --deep-verify       also download and SHA-256-check every object of the new manifests
#   --sample-percent P  each night also read back (and heal) a rotating sample of the objects
#                       reused from earlier nights: about P % of their bytes, at least one object
#                       (env R2_SAMPLE_PERCENT; default 2; 100 reads back every reused object)
#   --shrink-tolerance F  a set whose file count or byte total falls below (1-F) x its last
#                       verified backup in R2 fails (F in [0,1]; default 0.5; config backup.shrinkTolerance)
#   --accept-shrink SET accept an empty or shrunk SET for this run; sets are named <prefix>/<dir>,
#                       e.g. mello/outputs or scratch/inputs (repeatable; config backup.acceptShrink)
#   --fresh-volume      DATA_DIR is a volume created blank this morning (a day-scoped scratch): it
#                       must be a mount point (the volume itself, not an empty directory where it
#                       should be mounted); an empty or smaller set than the last backup (yesterday's
#                       volume) is then normal and not checked
#   --require-mount     DATA_DIR must be a mount point (a month-scoped scratch); sizes are checked
#   --state-dir DIR     hash state and last manifests (env STATE_DIR; default ${COMFYUME_ROOT}/var/lib/comfyume/r2,
#                       mello's own disk). Keep it where it outlives the data's host: a scratch
#                       backed up from an instance passes <scratch>/.comfyume/backup-state
#   --log FILE          (env BACKUP_LOG; default ${COMFYUME_ROOT}/var/log/comfyume/backup-mello.log)
#   --lock-wait SECONDS when another backup of these files holds the lock (an app host's hourly R2
#                       copy, app-r2-hourly.sh), wait up to SECONDS for it to finish (env
#                       BACKUP_LOCK_WAIT; default 0: fail at once, naming the holder). The nightly
#                       backup-before-delete waits; the hourly job never does (the next hour retries)
#   --help
# Secrets, on stdin only (KEY=value lines): R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY.
#
# Each directory D goes to <bucket>/<prefix>/D/ with the same append-only layout and
# verification as backup-to-r2.sh: content-addressed objects/..., dated manifests/*.tsv,
# unchanged files not sent again, every manifest entry checked after the upload.
#
# Exit codes: 0 uploaded and verified; 1 any failure (missing/altered objects are named).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/common.sh
source "${here}/../lib/common.sh"

ROOT=${COMFYUME_ROOT:-}
R2_ENDPOINT=${R2_ENDPOINT:-}
DATA_DIR=${DATA_DIR:-${ROOT}/home/dev/comfyume/data}
BACKUP_DIRS=${BACKUP_DIRS:-user_data,outputs,inputs}
R2_USER_FILES_BUCKET=${R2_USER_FILES_BUCKET:-comfyume-user-files-backups}
R2_PREFIX=${R2_PREFIX:-mello}
STATE_DIR=${STATE_DIR:-${ROOT}/var/lib/comfyume/r2}
BACKUP_LOG=${BACKUP_LOG:-${ROOT}/var/log/comfyume/backup-mello.log}
BACKUP_LOCK=${BACKUP_LOCK:-${ROOT}/run/lock/comfyume-backup-mello.lock}
BACKUP_LOCK_WAIT=${BACKUP_LOCK_WAIT:-0}
R2_DEEP_VERIFY=${R2_DEEP_VERIFY:-0}
VERIFY_ONLY=false
QUICK=false
REQUIRE_MOUNT=false
MOUNTPOINT_CMD=${MOUNTPOINT_CMD:-mountpoint}

while (($#)); do
  case $1 in
    --r2-endpoint) need_value "$@"; R2_ENDPOINT=$2; shift 2 ;;
    --data-dir) need_value "$@"; DATA_DIR=$2; shift 2 ;;
    --dirs) need_value "$@"; BACKUP_DIRS=$2; shift 2 ;;
    --quick) QUICK=true; shift ;;
    --fresh-volume) REQUIRE_MOUNT=true; BACKUP_SIZE_BASELINE=false; shift ;;
    --require-mount) REQUIRE_MOUNT=true; shift ;;
    --bucket) need_value "$@"; R2_USER_FILES_BUCKET=$2; shift 2 ;;
    --prefix) need_value "$@"; R2_PREFIX=$2; shift 2 ;;
    --deep-verify) R2_DEEP_VERIFY=1; shift ;;
    --sample-percent) need_value "$@"; R2_SAMPLE_PERCENT=$2; shift 2 ;;
    --verify-only) VERIFY_ONLY=true; shift ;;
    --shrink-tolerance) need_value "$@"; BACKUP_SHRINK_TOLERANCE=$2; shift 2 ;;
    --accept-shrink) need_value "$@"; BACKUP_ACCEPT_SHRINK+=("$2"); shift 2 ;;
    --state-dir) need_value "$@"; STATE_DIR=$2; shift 2 ;;
    --log) need_value "$@"; BACKUP_LOG=$2; shift 2 ;;
    --lock-wait) need_value "$@"; BACKUP_LOCK_WAIT=$2; shift 2 ;;
    -h | --help) print_help "$0"; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
log_to_file "$BACKUP_LOG"
cause_last_on_exit
validate_shrink_options
validate_sample_options
[[ $R2_PREFIX =~ ^[A-Za-z0-9._/-]+$ && $R2_PREFIX != /* && $R2_PREFIX != */ ]] || die "R2_PREFIX '${R2_PREFIX}' must be a relative key prefix like mello"
[[ $BACKUP_LOCK_WAIT =~ ^[0-9]+$ ]] || die "--lock-wait '${BACKUP_LOCK_WAIT}' is not a whole number of seconds (0: do not wait)"

TOTAL_SENT=0
TOTAL_DATA=0

prepare() {
  read_secrets R2_ACCESS_KEY_ID R2_SECRET_ACCESS_KEY
  r2_setup
  take_lock "$BACKUP_LOCK" "$BACKUP_LOCK_WAIT" "another backup of these files (an app host's hourly R2 copy?)"
  [[ $VERIFY_ONLY == true || -d $DATA_DIR ]] || die "DATA_DIR ${DATA_DIR} does not exist; pass --data-dir"
  if [[ $VERIFY_ONLY != true && $REQUIRE_MOUNT == true ]] && ! "$MOUNTPOINT_CMD" -q "$DATA_DIR"; then
    die "${DATA_DIR} is not a mount point: the scratch volume is not mounted, so its files would be missed; mount it (prepare-scratch.sh) and re-run"
  fi
  # (a backup names an unreachable bucket when its first listing fails: one rclone start less)
  [[ $VERIFY_ONLY != true ]] || r2_check_bucket "$R2_USER_FILES_BUCKET"
}

backup_dir() {
  local d=$1
  [[ $d =~ ^[A-Za-z0-9._-]+$ ]] || die "directory name '${d}' in --dirs is not a plain name"
  if [[ $VERIFY_ONLY == true ]]; then
    local mkey
    mkey=$(r2_latest_manifest "$R2_USER_FILES_BUCKET" "${R2_PREFIX}/${d}") || die "no manifest under r2:${R2_USER_FILES_BUCKET}/${R2_PREFIX}/${d}/manifests/ to verify"
    r2_verify "$R2_USER_FILES_BUCKET" "$mkey"
    COMFYUME_STEP_RESULT="verified ${mkey}"
    return 0
  fi
  [[ -d ${DATA_DIR}/${d} ]] || die "set '${R2_PREFIX}/${d}': source ${DATA_DIR}/${d} is missing (does not exist; is the volume mounted?); fix --data-dir or leave it out of --dirs"
  r2_backup_tree "${DATA_DIR}/${d}" "$R2_USER_FILES_BUCKET" "${R2_PREFIX}/${d}" "$STATE_DIR" "${R2_PREFIX}/${d}"
  COMFYUME_STEP_RESULT="sent ${R2_BYTES_SENT} of ${R2_DATA_BYTES} bytes; ${R2_MANIFEST_KEY}"
}

step prepare prepare
for d in ${BACKUP_DIRS//,/ }; do
  if [[ $QUICK == true && $d == outputs ]]; then
    log "--quick: leaving out outputs"
    continue
  fi
  # The directories run side by side (r2_backup_job: at most R2_BACKUP_PARALLEL at once, default 3).
  r2_backup_job "$d" backup_dir "$d"
done
r2_backup_jobs_wait
step_summary
log "BYTES_SENT=${TOTAL_SENT} DATA_BYTES=${TOTAL_DATA}"
