#!/usr/bin/env bash
# seed-sfs.sh: fill a fresh SFS from R2 at the start of a workshop month (models, cache,
# worker image), resumable and checksummed, ending with a manifest check.
#
# Usage: printf 'R2_ACCESS_KEY_ID=...\nR2_SECRET_ACCESS_KEY=...\n' |
#          seed-sfs.sh --r2-endpoint https://<account-id>.eu.r2.cloudflarestorage.com [options]
#
#   --r2-endpoint URL     R2 S3 endpoint (env R2_ENDPOINT; required)
#   --sfs DIR             SFS mount point (env SFS_MOUNT; default ${COMFYUME_ROOT}/mnt/sfs)
#   --only LIST           sets to seed: models,cache,worker (default all)
#   --models-bucket B     (env R2_MODELS_BUCKET; default comfyume-model-vault-backups)
#   --cache-bucket B      (env R2_CACHE_BUCKET; default comfyume-cache-backups)
#   --worker-bucket B     (env R2_WORKER_BUCKET; default comfyume-worker-container-backups)
#   --worker-image FILE   where the worker tarball goes (env WORKER_IMAGE_TARBALL; default <sfs>/worker-image.tar.gz)
#   --manifest SET=KEY    use this manifest key for SET instead of the newest (repeatable)
#   --repair              a local file that differs from the manifest is moved aside
#                         (<file>.corrupt-<stamp>, never deleted) and fetched again;
#                         without it such a file is an error
#   --min-free-mb N       margin kept free on the SFS (env MIN_FREE_MB; default 1024)
#   --state-dir DIR       the backups' hash state, seeded with every file checked here, so the
#                         first nightly backup does not read them again (env STATE_DIR; default
#                         <sfs>/.comfyume/backup-state, as backup-to-r2.sh)
#   --log FILE            (env SEED_LOG; default ${COMFYUME_ROOT}/var/log/comfyume/seed-sfs.log)
#   --layout L            manifest (ours, default) or flat (the workshop's own buckets: no manifests,
#                         dated tarballs; every other option goes to seed-flat.sh, see its --help)
#   --help
# Secrets, on stdin only: R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY.
#
# For each set the newest manifest written by backup-to-r2.sh is read; every file already
# on the SFS with the right SHA-256 is kept (so an interrupted run resumes where it
# stopped); the others are downloaded into <set>/.comfyume-staging with one rclone run per set (the
# sets side by side: COMFYUME_R2_PARALLEL_SETS, default 3), each
# file's SHA-256 checked once (batched, while the bytes are still cached) and only then linked
# under its final name. Every manifest entry has thus been checked once when a set succeeds; the
# manifest is kept as <sfs>/.comfyume/seed-<set>.tsv.
#
# Exit codes: 0 seeded and checked; 1 any failure (each bad object or file is named).
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
SEED_LOG=${SEED_LOG:-${ROOT}/var/log/comfyume/seed-sfs.log}
MIN_FREE_MB=${MIN_FREE_MB:-1024}
REPAIR=0
declare -A MANIFEST_OVERRIDE=()

# --layout flat: the buckets hold plain keys and dated tarballs, no manifests: seed-flat.sh seeds them.
layout=${SEED_LAYOUT:-manifest} rest=()
while (($#)); do if [[ $1 == --layout ]]; then need_value "$@"; layout=$2; shift 2; else rest+=("$1"); shift; fi; done
set -- ${rest[@]+"${rest[@]}"}
case $layout in
  manifest) ;;
  flat) exec bash "${here}/seed-flat.sh" "$@" ;;
  *) die "--layout '${layout}' is not a layout: use manifest (backup-to-r2.sh's manifests) or flat (plain keys, dated tarballs)" ;;
esac

while (($#)); do
  case $1 in
    --r2-endpoint) need_value "$@"; R2_ENDPOINT=$2; shift 2 ;;
    --sfs) need_value "$@"; SFS_MOUNT=$2; shift 2 ;;
    --only) need_value "$@"; ONLY=$2; shift 2 ;;
    --models-bucket) need_value "$@"; R2_MODELS_BUCKET=$2; shift 2 ;;
    --cache-bucket) need_value "$@"; R2_CACHE_BUCKET=$2; shift 2 ;;
    --worker-bucket) need_value "$@"; R2_WORKER_BUCKET=$2; shift 2 ;;
    --worker-image) need_value "$@"; WORKER_IMAGE_TARBALL=$2; shift 2 ;;
    --manifest)
      need_value "$@"
      [[ $2 == *=* ]] || die "--manifest needs SET=KEY, e.g. models=models/manifests/2026-02-01T020000Z.tsv"
      MANIFEST_OVERRIDE[${2%%=*}]=${2#*=}
      shift 2
      ;;
    --repair) REPAIR=1; shift ;;
    --min-free-mb) need_value "$@"; MIN_FREE_MB=$2; shift 2 ;;
    --state-dir) need_value "$@"; STATE_DIR=$2; shift 2 ;;
    --log) need_value "$@"; SEED_LOG=$2; shift 2 ;;
    -h | --help) print_help "$0"; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
WORKER_IMAGE_TARBALL=${WORKER_IMAGE_TARBALL:-${SFS_MOUNT}/worker-image.tar.gz}
STATE_DIR=${STATE_DIR:-${SFS_MOUNT}/.comfyume/backup-state}
log_to_file "$SEED_LOG"

prepare() {
  read_secrets R2_ACCESS_KEY_ID R2_SECRET_ACCESS_KEY
  r2_setup
  [[ -d $SFS_MOUNT ]] || die "SFS mount point ${SFS_MOUNT} does not exist; run mount-sfs.sh first"
  take_lock "${ROOT}/run/lock/comfyume-seed-sfs.lock"
  local s
  for s in ${ONLY//,/ }; do
    case $s in models | cache | worker) ;; *) die "unknown set '${s}' in --only (use models, cache, worker)" ;; esac
  done
}

# seed_set SET BUCKET PREFIX DEST
seed_set() {
  local set=$1 bucket=$2 prefix=$3 dest=$4 mkey
  mkey=${MANIFEST_OVERRIDE[$set]:-}
  if [[ -z $mkey ]]; then
    # The listing proves the bucket reachable; only when it fails does the bucket check (one
    # more rclone start, ~0.3-0.8 s under load) say whether the endpoint or the manifest is missing.
    if ! mkey=$(r2_latest_manifest "$bucket" "$prefix" 2>/dev/null); then
      r2_check_bucket "$bucket"
      die "no manifest under r2:${bucket}/${prefix}/manifests/; run backup-to-r2.sh first, or leave this set out with --only"
    fi
  else
    r2_check_bucket "$bucket"
  fi
  log "seeding ${set} from r2:${bucket}/${mkey} into ${dest}"
  # r2_restore_tree checked every entry's SHA-256 (kept or fetched) and fails on any mismatch: no
  # second pass over the bytes (at month start that is ~220 GB read again).
  r2_restore_tree "$bucket" "$mkey" "$dest" "$REPAIR"
  hash_state_seed "$(hash_state_file "$STATE_DIR" "$bucket" "$prefix")" "$dest" "$R2_RESTORED_MANIFEST" ||
    warn "could not seed the hash state (the next backup reads these files once)"
  mkdir -p "${SFS_MOUNT}/.comfyume"
  mv -f "$R2_RESTORED_MANIFEST" "${SFS_MOUNT}/.comfyume/seed-${set}.tsv"
  COMFYUME_STEP_RESULT="${R2_RESTORE_FETCHED} fetched, ${R2_RESTORE_KEPT} kept"
}

step prepare prepare
# The sets are restored side by side (COMFYUME_R2_PARALLEL_SETS, default 3): each set's fixed costs
# overlap the others' downloads. A failed set is named; the others still complete.
for set in ${ONLY//,/ }; do
  case $set in
    models) r2_restore_step_bg models seed_set models "$R2_MODELS_BUCKET" models "${SFS_MOUNT}/models" ;;
    cache) r2_restore_step_bg cache seed_set cache "$R2_CACHE_BUCKET" cache "${SFS_MOUNT}/cache" ;;
    worker) r2_restore_step_bg worker-image seed_set worker "$R2_WORKER_BUCKET" worker "$(dirname "$WORKER_IMAGE_TARBALL")" ;;
  esac
done
r2_restore_steps_wait
step_summary
