#!/usr/bin/env bash
# backup-to-r2.sh: end-of-day backup of the SFS (models, instance cache, worker image) to R2.
#
# Usage: printf 'R2_ACCESS_KEY_ID=...\nR2_SECRET_ACCESS_KEY=...\n' |
#          backup-to-r2.sh --r2-endpoint https://<account-id>.eu.r2.cloudflarestorage.com [options]
#
#   --r2-endpoint URL     R2 S3 endpoint (env R2_ENDPOINT; required)
#   --sfs DIR             SFS mount point (env SFS_MOUNT; default ${COMFYUME_ROOT}/mnt/sfs)
#   --only LIST           comma-separated sets to back up: models,cache,worker (default all)
#   --models-bucket B     (env R2_MODELS_BUCKET; default comfyume-model-vault-backups)
#   --cache-bucket B      (env R2_CACHE_BUCKET; default comfyume-cache-backups)
#   --worker-bucket B     (env R2_WORKER_BUCKET; default comfyume-worker-container-backups)
#   --worker-image FILE   worker image tarball (env WORKER_IMAGE_TARBALL; default <sfs>/worker-image.tar.gz)
#   --verify-only         upload nothing: verify the newest manifest of each set against R2
#   --deep-verify         also download every object of the new manifest and check its SHA-256
#   --sample-percent P    each night also read back (and heal) a rotating sample of the objects
#                         reused from earlier nights: about P % of their bytes, at least one object
#                         (env R2_SAMPLE_PERCENT; default 2; 100 reads back every reused object)
#   --hourly-lock FILE    the hourly instance backup's lock, held for the whole run so that job
#                         cannot write into the cache set meanwhile (env HOURLY_LOCK; default
#                         ${COMFYUME_ROOT}/run/lock/comfyume-backup-instance.lock)
#   --hourly-wait SECONDS how long to wait for a running hourly job (env HOURLY_LOCK_WAIT; default 900)
#   --shrink-tolerance F  a set whose file count or byte total falls below (1-F) x its last
#                         verified backup in R2 fails (F in [0,1]; default 0.5; config backup.shrinkTolerance)
#   --accept-shrink SET   accept an empty or shrunk SET (models, cache or worker) for this run
#                         (repeatable; config backup.acceptShrink). A missing source always fails.
#   --state-dir DIR       hash state and last manifests (env STATE_DIR; default <sfs>/.comfyume/backup-state:
#                         on the SFS, so it outlives the instance and unchanged files are not read again)
#   --log FILE            (env BACKUP_LOG; default ${COMFYUME_ROOT}/var/log/comfyume/backup-to-r2.log)
#   --help
# Secrets, on stdin only (KEY=value lines): R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY.
#
# Sets and keys (append-only: nothing is ever overwritten or deleted):
#   models  <sfs>/models          -> <models-bucket>/models/...
#   cache   <sfs>/cache           -> <cache-bucket>/cache/...
#   worker  <worker-image>        -> <worker-bucket>/worker/...
# Under each prefix, objects/<sha256[0:2]>/<sha256> holds file contents (a key is written
# once; an existing key is never replaced: rclone --immutable) and manifests/<UTC stamp>.tsv
# lists "sha256 md5 size path key" for every file of this run. Unchanged files are not sent
# again. A copy found altered in R2 is never overwritten: a fresh one goes to <sha256>.g2 (.g3,
# ...) and the manifest names it, so the run after a failed one heals.
# After the upload every object sent in this run is read back (downloaded and SHA-256-hashed as
# it streams); the other entries are checked against the remote listing (present, size, MD5;
# also read back with --deep-verify). Only then is the manifest written, and it is read back and
# compared. Any missing or altered object is named, no manifest is written and the exit code is 1.
#
# Exit codes: 0 every set uploaded and verified; 1 any failure.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/common.sh
source "${here}/../lib/common.sh"

ROOT=${COMFYUME_ROOT:-}
R2_ENDPOINT=${R2_ENDPOINT:-}
SFS_MOUNT=${SFS_MOUNT:-${ROOT}/mnt/sfs}
ONLY=models,cache,worker
R2_MODELS_BUCKET=${R2_MODELS_BUCKET:-comfyume-model-vault-backups}
R2_CACHE_BUCKET=${R2_CACHE_BUCKET:-comfyume-cache-backups}
R2_WORKER_BUCKET=${R2_WORKER_BUCKET:-comfyume-worker-container-backups}
WORKER_IMAGE_TARBALL=${WORKER_IMAGE_TARBALL:-}
STATE_DIR=${STATE_DIR:-}
BACKUP_LOG=${BACKUP_LOG:-${ROOT}/var/log/comfyume/backup-to-r2.log}
BACKUP_LOCK=${BACKUP_LOCK:-${ROOT}/run/lock/comfyume-backup-to-r2.lock}
HOURLY_LOCK=${HOURLY_LOCK:-${ROOT}/run/lock/comfyume-backup-instance.lock}
HOURLY_LOCK_WAIT=${HOURLY_LOCK_WAIT:-900}
R2_DEEP_VERIFY=${R2_DEEP_VERIFY:-0}
VERIFY_ONLY=false

while (($#)); do
  case $1 in
    --r2-endpoint) need_value "$@"; R2_ENDPOINT=$2; shift 2 ;;
    --sfs) need_value "$@"; SFS_MOUNT=$2; shift 2 ;;
    --only) need_value "$@"; ONLY=$2; shift 2 ;;
    --models-bucket) need_value "$@"; R2_MODELS_BUCKET=$2; shift 2 ;;
    --cache-bucket) need_value "$@"; R2_CACHE_BUCKET=$2; shift 2 ;;
    --worker-bucket) need_value "$@"; R2_WORKER_BUCKET=$2; shift 2 ;;
    --worker-image) need_value "$@"; WORKER_IMAGE_TARBALL=$2; shift 2 ;;
    --deep-verify) R2_DEEP_VERIFY=1; shift ;;
    --sample-percent) need_value "$@"; R2_SAMPLE_PERCENT=$2; shift 2 ;;
    --verify-only) VERIFY_ONLY=true; shift ;;
    --hourly-lock) need_value "$@"; HOURLY_LOCK=$2; shift 2 ;;
    --hourly-wait) need_value "$@"; HOURLY_LOCK_WAIT=$2; shift 2 ;;
    --shrink-tolerance) need_value "$@"; BACKUP_SHRINK_TOLERANCE=$2; shift 2 ;;
    --accept-shrink) need_value "$@"; BACKUP_ACCEPT_SHRINK+=("$2"); shift 2 ;;
    --state-dir) need_value "$@"; STATE_DIR=$2; shift 2 ;;
    --log) need_value "$@"; BACKUP_LOG=$2; shift 2 ;;
    -h | --help) print_help "$0"; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
WORKER_IMAGE_TARBALL=${WORKER_IMAGE_TARBALL:-${SFS_MOUNT}/worker-image.tar.gz}
# The hash state of the SFS sets lives on the SFS (outside every set): the instance's own disk is
# new every day, and a state there would make every night read every byte again.
STATE_DIR=${STATE_DIR:-${SFS_MOUNT}/.comfyume/backup-state}
log_to_file "$BACKUP_LOG"
cause_last_on_exit
[[ $HOURLY_LOCK_WAIT =~ ^[0-9]+$ ]] || die "--hourly-wait '${HOURLY_LOCK_WAIT}' is not a whole number of seconds"
validate_shrink_options
validate_sample_options

TOTAL_SENT=0
TOTAL_DATA=0

prepare() {
  read_secrets R2_ACCESS_KEY_ID R2_SECRET_ACCESS_KEY
  r2_setup
  take_lock "$BACKUP_LOCK"
  # The hourly job writes snapshots into the cache set: keep it out until this run has hashed,
  # sent and verified (a running one is waited for, boundedly).
  [[ $VERIFY_ONLY == true ]] || take_lock "$HOURLY_LOCK" "$HOURLY_LOCK_WAIT" "the hourly job"
  local s
  for s in ${ONLY//,/ }; do
    case $s in models | cache | worker) ;; *) die "unknown set '${s}' in --only (use models, cache, worker)" ;; esac
  done
}

# backup_set SRC BUCKET PREFIX
backup_set() {
  if [[ $VERIFY_ONLY == true ]]; then
    local mkey
    r2_check_bucket "$2"
    mkey=$(r2_latest_manifest "$2" "$3") || die "no manifest under r2:$2/$3/manifests/ to verify"
    r2_verify "$2" "$mkey"
    COMFYUME_STEP_RESULT="verified r2:$2/${mkey}"
    return 0
  fi
  [[ -e $1 ]] || die "set '$3': source $1 is missing: is the SFS mounted at ${SFS_MOUNT}? Mount it (mount-sfs.sh) and re-run, or leave the set out with --only"
  local pattern skipped
  for pattern in "${COMFYUME_MANIFEST_PRUNE[@]}"; do
    skipped=$(find "$1" -path "$1/${pattern}" -prune -print 2>/dev/null | wc -l)
    ((skipped == 0)) || log "leaving out ${skipped} half-written snapshot(s) matching ${pattern} (never finished by the hourly job)"
  done
  r2_backup_tree "$1" "$2" "$3" "$STATE_DIR" "$3"
  COMFYUME_STEP_RESULT="sent ${R2_BYTES_SENT} of ${R2_DATA_BYTES} bytes; r2:$2/${R2_MANIFEST_KEY}"
}

step prepare prepare
# The sets run side by side (r2_backup_job: at most R2_BACKUP_PARALLEL at once, default 3).
for set in ${ONLY//,/ }; do
  case $set in
    models) r2_backup_job models backup_set "${SFS_MOUNT}/models" "$R2_MODELS_BUCKET" models ;;
    # A <stamp>.partial snapshot is one the hourly job never finished: never part of a backup.
    cache)
      COMFYUME_MANIFEST_PRUNE=('backups/*/*.partial')
      r2_backup_job cache backup_set "${SFS_MOUNT}/cache" "$R2_CACHE_BUCKET" cache
      COMFYUME_MANIFEST_PRUNE=()
      ;;
    worker) r2_backup_job worker-image backup_set "$WORKER_IMAGE_TARBALL" "$R2_WORKER_BUCKET" worker ;;
  esac
done
r2_backup_jobs_wait
step_summary
log "BYTES_SENT=${TOTAL_SENT} DATA_BYTES=${TOTAL_DATA}"
