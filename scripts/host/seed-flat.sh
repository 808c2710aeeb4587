#!/usr/bin/env bash
# seed-flat.sh: fill an SFS from the workshop's own FLAT R2 buckets, which hold plain keys and no
# manifests (seed-sfs.sh --layout flat runs it; it can also be run on its own).
#
# Usage: printf 'R2_ACCESS_KEY_ID=...\nR2_SECRET_ACCESS_KEY=...\n' |
#          seed-flat.sh --r2-endpoint https://<account-id>.eu.r2.cloudflarestorage.com [options]
#
#   --r2-endpoint URL        R2 S3 endpoint (env R2_ENDPOINT; required)
#   --sfs DIR                SFS mount point (env SFS_MOUNT; default ${COMFYUME_ROOT}/mnt/sfs)
#   --only LIST              sets: models,cache,worker,user-files (default models,cache,worker)
#   --models-bucket B        <model_type>/<file> objects (default comfyume-model-vault-backups)
#   --cache-bucket B         config/<name>-<YYYY-MM-DD>.tar.gz (default comfyume-cache-backups)
#   --worker-bucket B        <image>-<YYYY-MM-DD>.tar.gz (default comfyume-worker-container-backups)
#   --user-files-bucket B    user-data-<YYYY-MM-DD-HH>.tar.gz (default comfyume-user-files-backups)
#   --models-dest DIR        where the model types go (default <sfs>/models/shared)
#   --config-dest DIR        the newest config/<name>-<date>.tar.gz of each name unpacks into DIR/<name>
#                            (default <sfs>/cache/config)
#   --worker-image FILE      where the newest image tarball goes (default <sfs>/worker-image.tar.gz)
#   --worker-image-name N    which <image> to take when the bucket holds several
#   --user-files-dest DIR    where the newest user-data tarball unpacks (required for user-files)
#   --repair                 a local model that differs from the bucket (or was altered since the
#                            last seed) is moved aside (<file>.corrupt-<stamp>, never deleted) and
#                            fetched again; without it such a file is an error
#   --force                  restore the newest tarballs again even when already restored, replacing
#                            local files newer than the tarball's and a newer local image tarball
#                            (default: both are kept)
#   --publish-manifest       also keep each new models manifest in the bucket, append-only, as
#                            .comfyume/flat-manifests/<stamp>-<sha>.tsv (never one of their keys)
#   --min-free-mb N          margin kept free on the SFS (env MIN_FREE_MB; default 1024)
#   --state-dir DIR          the backups' hash state, seeded with every model verified here, so the
#                            first nightly backup of <sfs>/models does not read them again (env
#                            STATE_DIR; default <sfs>/.comfyume/backup-state, as backup-to-r2.sh)
#   --log FILE               (env SEED_LOG; default ${COMFYUME_ROOT}/var/log/comfyume/seed-sfs.log)
#   --help
# Secrets, on stdin only: R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY.
#
# Models: the bucket is listed (ListObjectsV2: key, size, ETag); what is not on the SFS yet is copied
# into <dest>/.comfyume-staging, every copied file is hashed (SHA-256, and the ETag computed locally:
# the MD5, or for a multipart object "<md5>-N" over the part size read from the server's part 1) and
# installed only when size and ETag match the listing. The manifest built (path, size, ETag, SHA-256,
# local mtime) is kept as <sfs>/.comfyume/flat-models.tsv: the next run reads only the listing, copies
# only new or changed objects, and finds a local file altered since by its size/mtime.
# Dated tarballs: the newest of each name (dates compared as dates) is copied, checked the same way,
# and unpacked or put in place; what was restored is kept as <sfs>/.comfyume/flat-<set>.tsv.
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
R2_USER_FILES_BUCKET=${R2_USER_FILES_BUCKET:-comfyume-user-files-backups}
MODELS_DEST='' CONFIG_DEST='' USER_FILES_DEST='' WORKER_IMAGE_NAME=''
WORKER_IMAGE_TARBALL=${WORKER_IMAGE_TARBALL:-}
SEED_LOG=${SEED_LOG:-${ROOT}/var/log/comfyume/seed-sfs.log}
STATE_DIR=${STATE_DIR:-}
MIN_FREE_MB=${MIN_FREE_MB:-1024}
REPAIR=0 FORCE=0 PUBLISH=0

while (($#)); do
  case $1 in
    --r2-endpoint) need_value "$@"; R2_ENDPOINT=$2; shift 2 ;;
    --sfs) need_value "$@"; SFS_MOUNT=$2; shift 2 ;;
    --only) need_value "$@"; ONLY=$2; shift 2 ;;
    --models-bucket) need_value "$@"; R2_MODELS_BUCKET=$2; shift 2 ;;
    --cache-bucket) need_value "$@"; R2_CACHE_BUCKET=$2; shift 2 ;;
    --worker-bucket) need_value "$@"; R2_WORKER_BUCKET=$2; shift 2 ;;
    --user-files-bucket) need_value "$@"; R2_USER_FILES_BUCKET=$2; shift 2 ;;
    --models-dest) need_value "$@"; MODELS_DEST=$2; shift 2 ;;
    --config-dest) need_value "$@"; CONFIG_DEST=$2; shift 2 ;;
    --worker-image) need_value "$@"; WORKER_IMAGE_TARBALL=$2; shift 2 ;;
    --worker-image-name) need_value "$@"; WORKER_IMAGE_NAME=$2; shift 2 ;;
    --user-files-dest) need_value "$@"; USER_FILES_DEST=$2; shift 2 ;;
    --repair) REPAIR=1; shift ;;
    --force) FORCE=1; shift ;;
    --publish-manifest) PUBLISH=1; shift ;;
    --min-free-mb) need_value "$@"; MIN_FREE_MB=$2; shift 2 ;;
    --log) need_value "$@"; SEED_LOG=$2; shift 2 ;;
    --state-dir) need_value "$@"; STATE_DIR=$2; shift 2 ;;
    --manifest) die "$1 does not apply to a flat bucket (it has no manifests): leave it out, or use --layout manifest" ;;
    -h | --help) print_help "$0"; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
MODELS_DEST=${MODELS_DEST:-${SFS_MOUNT}/models/shared}
CONFIG_DEST=${CONFIG_DEST:-${SFS_MOUNT}/cache/config}
WORKER_IMAGE_TARBALL=${WORKER_IMAGE_TARBALL:-${SFS_MOUNT}/worker-image.tar.gz}
KEPT_DIR="${SFS_MOUNT}/.comfyume"
STATE_DIR=${STATE_DIR:-${KEPT_DIR}/backup-state}
log_to_file "$SEED_LOG"

prepare() {
  read_secrets R2_ACCESS_KEY_ID R2_SECRET_ACCESS_KEY
  r2_setup
  require_cmd curl perl split tar
  [[ -d $SFS_MOUNT ]] || die "SFS mount point ${SFS_MOUNT} does not exist; run mount-sfs.sh first"
  take_lock "${ROOT}/run/lock/comfyume-seed-sfs.lock"
  local s
  for s in ${ONLY//,/ }; do
    case $s in models | cache | worker) ;;
      user-files) [[ -n $USER_FILES_DEST ]] || die "--only user-files needs --user-files-dest DIR (where user-data-<date>.tar.gz unpacks)" ;;
      *) die "unknown set '${s}' in --only (use models, cache, worker, user-files)" ;;
    esac
  done
  mkdir -p "$KEPT_DIR"
}

# flat_local_files DIR OUT: "path<TAB>size<TAB>mtime" of every file under DIR (one find, no reads).
flat_local_files() {
  find "$1" -path "$1/.comfyume-staging" -prune -o -type f -printf '%P\t%s\t%T@\n' 2>/dev/null | LC_ALL=C sort >"$2" || true
}

# flat_check_keys LISTING BUCKET: every key must be a safe relative path (a key such as ../x or /x
# would write outside the destination).
flat_check_keys() {
  local bad
  bad=$(awk -F'\t' '$1 ~ /^\// || $1 ~ /(^|\/)\.\.?(\/|$)/ || $1 ~ /[[:cntrl:]]/ { print $1; exit }' "$1")
  [[ -z $bad ]] || die "r2:$2 holds the key '${bad}', which is not a safe relative path; rename it in the bucket (nothing was copied)"
}

# flat_kept_load FILE BUCKET: KEPT[path]="size<TAB>etag<TAB>sha256<TAB>mtime" from a kept manifest
# of BUCKET (one of another bucket is ignored: every file is then checked against this listing).
flat_kept_load() {
  declare -gA KEPT=()
  local path size etag sha mtime
  [[ -f $1 ]] || return 0
  if [[ $(head -n 1 "$1") != "# comfyume-flat-manifest v1 r2:$2:"* ]]; then
    warn "$1 was not built from r2:$2: every local file is checked against the listing again"
    return 0
  fi
  while IFS=$'\t' read -r path size etag sha mtime; do
    [[ $path == '#'* || -z $path ]] || KEPT[$path]="${size}	${etag}	${sha}	${mtime}"
  done <"$1"
}

# flat_plan LISTING LOCAL WORK BUCKET DEST: sort each listed object into WORK/unchanged (kept rows),
# WORK/fetch (keys to copy), WORK/check (local files not in the kept manifest: hashed against the
# listing), counting FLAT_ALTERED local files that changed since the last seed (moved aside with
# --repair, else an error).
flat_plan() {
  local listing=$1 localf=$2 work=$3 bucket=$4 dest=$5 key size etag lm k_size k_etag k_sha k_mtime l
  local -A here_now=()
  while IFS=$'\t' read -r key size lm; do here_now[$key]="${size}"$'\t'"${lm}"; done <"$localf"
  : >"${work}/unchanged"; : >"${work}/fetch"; : >"${work}/check"
  FLAT_ALTERED=0
  while IFS=$'\t' read -r key size etag lm; do
    l=${here_now[$key]:-}
    if [[ -n ${KEPT[$key]:-} ]]; then
      IFS=$'\t' read -r k_size k_etag k_sha k_mtime <<<"${KEPT[$key]}"
      if [[ -n $l && $l != "${k_size}"$'\t'"${k_mtime}" ]]; then
        if ((REPAIR)); then
          mv -- "${dest}/${key}" "${dest}/${key}.corrupt-$(date -u +%Y%m%dT%H%M%SZ)"
          log "moved aside ${dest}/${key} (altered since the last seed)"
          l=''
        else
          log "ALTERED: ${dest}/${key} changed since the last seed (size/mtime ${l/$'\t'/\/} differ from the kept manifest's ${k_size}/${k_mtime}); re-run with --repair to move it aside and fetch r2:${bucket}/${key} again"
          FLAT_ALTERED=$((FLAT_ALTERED + 1))
          continue
        fi
      fi
      if [[ -n $l && $k_size == "$size" && $k_etag == "$etag" ]]; then
        printf '%s\t%s\t%s\t%s\t%s\n' "$key" "$size" "$etag" "$k_sha" "$k_mtime" >>"${work}/unchanged"
        continue
      fi
      [[ -z $l ]] || log "r2:${bucket}/${key} changed in the bucket (size ${k_size} -> ${size}, ETag ${k_etag} -> ${etag}): copying it again"
      printf '%s\t%s\t%s\n' "$key" "$size" "$etag" >>"${work}/fetch"
    elif [[ -n $l ]]; then
      printf '%s\t%s\t%s\n' "$key" "$size" "$etag" >>"${work}/check"
    else
      printf '%s\t%s\t%s\n' "$key" "$size" "$etag" >>"${work}/fetch"
    fi
  done <"$listing"
}

# flat_adopt WORK BUCKET DEST: local files the kept manifest does not know (an SFS seeded by hand, or
# an earlier run that lost its manifest) are hashed; a match is kept without a copy (WORK/adopted).
flat_adopt() {
  local work=$1 bucket=$2 dest=$3 key size etag
  : >"${work}/adopted"
  FLAT_DIFFERS=0
  while IFS=$'\t' read -r key size etag; do
    if [[ $(stat -c %s -- "${dest}/${key}") == "$size" ]] && flat_verify "$bucket" "$key" "${dest}/${key}" "$size" "$etag" >/dev/null 2>&1; then
      printf '%s\t%s\t%s\t%s\t%s\n' "$key" "$size" "$etag" "$FLAT_SHA256" "$FLAT_MD5" >>"${work}/adopted"
    elif ((REPAIR)); then
      mv -- "${dest}/${key}" "${dest}/${key}.corrupt-$(date -u +%Y%m%dT%H%M%SZ)"
      log "moved aside ${dest}/${key} (differs from r2:${bucket}/${key})"
      printf '%s\t%s\t%s\n' "$key" "$size" "$etag" >>"${work}/fetch"
    else
      log "DIFFERS: ${dest}/${key} is already on the SFS and differs from r2:${bucket}/${key} (size or ETag ${etag}); re-run with --repair to move it aside and fetch the bucket's copy"
      FLAT_DIFFERS=$((FLAT_DIFFERS + 1))
    fi
  done <"${work}/check"
}

# flat_fetch WORK BUCKET DEST: copy WORK/fetch into DEST/.comfyume-staging (one rclone run), check each
# copy (flat_verify) and only then move it into place; WORK/installed gets "key size etag sha256 md5".
flat_fetch() {
  local work=$1 bucket=$2 dest=$3 staging="${1}/none" key size etag need
  : >"${work}/installed"
  FLAT_FAILED=0
  [[ -s ${work}/fetch ]] || return 0
  staging="${dest}/.comfyume-staging"
  need=$(awk -F'\t' '{ b += $2 } END { printf "%.0f", b / 1048576 }' "${work}/fetch")
  mkdir -p "$staging"
  require_free_mb "$dest" $((need + MIN_FREE_MB)) "copying ${need} MiB from r2:${bucket}"
  cut -f1 "${work}/fetch" >"${work}/fetch.keys"
  log "copying $(wc -l <"${work}/fetch.keys") object(s), ${need} MiB, from r2:${bucket}"
  # rclone's own MD5 check is off: flat_verify's is the one check of every byte (and covers multipart).
  r2_rclone copy --files-from "${work}/fetch.keys" --no-traverse --ignore-checksum --transfers 8 --checkers 16 \
    --stats 30s --stats-one-line --stats-log-level NOTICE "r2:${bucket}" "$staging" 2>"${work}/rclone.err" ||
    log "rclone reported errors copying from r2:${bucket} (each missing object is named below): $(scrub "$(tail -n 3 "${work}/rclone.err")")"
  while IFS=$'\t' read -r key size etag; do
    if [[ ! -f ${staging}/${key} ]]; then
      log "MISSING: r2:${bucket}/${key} could not be copied (gone from the bucket, or unreadable); re-run, and check the object in the bucket"
      FLAT_FAILED=$((FLAT_FAILED + 1))
    elif ! flat_verify "$bucket" "$key" "${staging}/${key}" "$size" "$etag"; then
      rm -f -- "${staging}/${key}" # our own copy, proven wrong
      FLAT_FAILED=$((FLAT_FAILED + 1))
    else
      mkdir -p -- "$(dirname -- "${dest}/${key}")"
      mv -f -- "${staging}/${key}" "${dest}/${key}"
      printf '%s\t%s\t%s\t%s\t%s\n' "$key" "$size" "$etag" "$FLAT_SHA256" "$FLAT_MD5" >>"${work}/installed"
    fi
  done <"${work}/fetch"
  ((FLAT_FAILED)) || rm -rf -- "$staging"
}

# flat_keep_manifest WORK BUCKET DEST KEPT_FILE: the new kept manifest, replaced by rename: unchanged
# rows as they were, copied and adopted rows with the local mtime now, and the old row of any object
# still listed that was not verified this run (a failed copy, an altered file: the next run sees it again).
flat_keep_manifest() {
  local work=$1 bucket=$2 dest=$3 kept=$4 key
  flat_local_files "$dest" "${work}/local.after"
  for key in "${!KEPT[@]}"; do printf '%s\t%s\n' "$key" "${KEPT[$key]}"; done >"${work}/kept.old"
  cat "${work}/installed" "${work}/adopted" >"${work}/verified"
  {
    printf '# comfyume-flat-manifest v1 r2:%s: path\tsize\tetag\tsha256\tmtime\n' "$bucket"
    awk -F'\t' -v OFS='\t' '
      FILENAME == ARGV[1] { mtime[$1] = $3; next }
      FILENAME == ARGV[2] { listed[$1] = 1; next }
      FILENAME == ARGV[3] { print; done[$1] = 1; next }
      FILENAME == ARGV[4] { print $1, $2, $3, $4, mtime[$1]; done[$1] = 1; next }
      ($1 in listed) && !($1 in done) { print }' \
      "${work}/local.after" "${work}/listing" "${work}/unchanged" "${work}/verified" "${work}/kept.old" | LC_ALL=C sort
  } >"${kept}.tmp"
  mv -f -- "${kept}.tmp" "$kept"
}

# flat_publish KEPT_FILE BUCKET: a copy of the kept manifest in the bucket, under .comfyume/ (never one of
# their keys), as a NEW key each time it changed (append-only: nothing there is overwritten or deleted).
flat_publish() {
  local kept=$1 bucket=$2 sum last="${1%.tsv}.published"
  sum=$(sha256sum <"$kept")
  sum=${sum%% *}
  [[ ! -f $last || $(cat "$last") != "$sum" ]] || { log "manifest unchanged since it was last kept in r2:${bucket}/.comfyume/"; return 0; }
  local key
  key=".comfyume/flat-manifests/$(date -u +%Y%m%dT%H%M%SZ)-${sum:0:12}.tsv"
  r2_rclone copyto --ignore-existing "$kept" "r2:${bucket}/${key}" 2>/dev/null ||
    die "could not keep the manifest as r2:${bucket}/${key} (the SFS copy ${kept} is complete); check the token may write to the bucket, or leave out --publish-manifest"
  printf '%s\n' "$sum" >"$last"
  log "manifest kept as r2:${bucket}/${key}"
}

# flat_seed_hash_state WORK BUCKET DEST: the files verified this run, as backup-to-r2.sh's models set
# (<sfs>/models, prefix models) will see them, go into its hash state: the first night reads none of
# them again. Only when DEST lies under <sfs>/models; a state that cannot be written costs time, not data.
flat_seed_hash_state() {
  local work=$1 bucket=$2 dest=$3 rel
  [[ $dest == "${SFS_MOUNT}/models/"* ]] || return 0
  rel=${dest#"${SFS_MOUNT}/models/"}
  [[ -s ${work}/verified ]] || return 0
  { printf '%s\n' "$COMFYUME_MANIFEST_HEADER"; awk -F'\t' -v OFS='\t' -v p="${rel%/}/" '{ print $4, $5, $2, p $1 }' "${work}/verified"; } >"${work}/state-manifest"
  mkdir -p "$STATE_DIR"
  hash_state_seed "$(hash_state_file "$STATE_DIR" "$bucket" models)" "${SFS_MOUNT}/models" "${work}/state-manifest" ||
    warn "could not seed the hash state (the next backup reads these files once)"
}

# seed_models BUCKET DEST: the flat model vault into DEST (see the header).
seed_models() {
  local bucket=$1 dest=$2 work kept="${KEPT_DIR}/flat-models.tsv" verified
  work=$(mktemp -d)
  r2_flat_list "$bucket" "" "${work}/all"
  # Left out: ours in the same bucket (.comfyume/, and backup-to-r2.sh's models/objects/ and
  # models/manifests/ when the project's backups go to their bucket), and directory markers.
  awk -F'\t' '$1 !~ /^(\.comfyume|models\/objects|models\/manifests)\// && $1 !~ /\/$/' "${work}/all" >"${work}/listing"
  [[ -s ${work}/listing ]] || die "r2:${bucket} holds no objects; check --models-bucket (comfyume:seed.layout is 'flat'), or leave models out with --only"
  flat_check_keys "${work}/listing" "$bucket"
  mkdir -p "$dest"
  flat_kept_load "$kept" "$bucket"
  flat_local_files "$dest" "${work}/local"
  flat_plan "${work}/listing" "${work}/local" "$work" "$bucket" "$dest"
  flat_adopt "$work" "$bucket" "$dest"
  flat_fetch "$work" "$bucket" "$dest"
  flat_keep_manifest "$work" "$bucket" "$dest" "$kept"
  ((PUBLISH == 0)) || flat_publish "$kept" "$bucket"
  flat_seed_hash_state "$work" "$bucket" "$dest"
  verified=$(($(wc -l <"${work}/installed") + $(wc -l <"${work}/adopted")))
  COMFYUME_STEP_RESULT="$(wc -l <"${work}/installed") fetched, $(wc -l <"${work}/unchanged") unchanged, $(wc -l <"${work}/adopted") adopted"
  log "models from r2:${bucket}: ${COMFYUME_STEP_RESULT}; verified ${verified} file(s) against the listing"
  local n_failed=$((FLAT_FAILED + FLAT_ALTERED + FLAT_DIFFERS))
  rm -rf -- "$work"
  ((n_failed == 0)) || die "seeding models from r2:${bucket}: ${n_failed} object(s) failed (each is named above; the kept manifest lists only verified files)"
}

# flat_pick_latest SET BUCKET PREFIX LATEST: narrow LATEST (flat_latest_dated) to what SET restores:
# the worker's one image (--worker-image-name when the bucket holds several), user-data for user-files.
flat_pick_latest() {
  local set=$1 bucket=$2 prefix=$3 latest=$4 names want=''
  names=$(cut -f1 "$latest" | paste -sd, -)
  case $set in
    worker)
      want=$WORKER_IMAGE_NAME
      if [[ -z $want && $(wc -l <"$latest") -gt 1 ]]; then
        die "r2:${bucket} holds dated tarballs of several images (${names}): name the one to seed with --worker-image-name (comfyume:seed.workerImageName)"
      fi ;;
    user-files) want='user-data' ;;
  esac
  if [[ -n $want ]]; then
    awk -F'\t' -v n="$want" '$1 == n' "$latest" >"${latest}.one"
    [[ -s ${latest}.one ]] || die "no ${prefix}${want}-<YYYY-MM-DD$([[ $set == user-files ]] && printf -- '-HH')>.tar.gz in r2:${bucket} (it holds: ${names:-none}); check the name and the bucket"
    mv -f "${latest}.one" "$latest"
  fi
}

# flat_place SET STAGED NAME DEST LAST_MODIFIED: put a verified tarball in place. cache: unpacked into
# DEST/NAME; user-files: unpacked into DEST; both keep local files newer than the tarball's copy unless
# --force. worker: moved to DEST unless a local file there is newer than the object and not the one
# this script put there (then kept, unless --force). Prints the path whose mtime is recorded.
flat_place() {
  local set=$1 staged=$2 name=$3 dest=$4 lm=$5 into keep=(--keep-newer-files) newer ours=0
  case $set in
    worker)
      if [[ -f $dest && $FORCE == 0 ]]; then
        [[ -z ${KEPT[$name]:-} || $(cut -f3 <<<"${KEPT[$name]}") != "$(stat -c %s -- "$dest")" ]] || ours=1
        if ((!ours)) && (($(stat -c %Y -- "$dest") > $(date -u -d "$lm" +%s))); then
          log "KEPT: ${dest} is newer than r2 object of ${lm} and was not put there by a seed; left as it is (re-run with --force to replace it)"
          rm -f -- "$staged"
          printf '%s\n' "$dest"
          return 0
        fi
      fi
      mkdir -p -- "$(dirname -- "$dest")"
      mv -f -- "$staged" "$dest"
      printf '%s\n' "$dest" ;;
    cache | user-files)
      into=$dest
      [[ $set != cache ]] || into="${dest}/${name}"
      mkdir -p -- "$into"
      ((FORCE == 0)) || keep=(--overwrite)
      newer=$(tar -xzf "$staged" -C "$into" --no-same-owner "${keep[@]}" 2>&1 >/dev/null) ||
        die "cannot unpack ${staged} into ${into}: $(tail -n 3 <<<"$newer"). The tarball was verified against R2, so the SFS side is the problem (space, permissions)"
      [[ -z $newer ]] || log "kept $(grep -c 'is newer' <<<"$newer") local file(s) in ${into} newer than the tarball's (re-run with --force to replace them)"
      rm -f -- "$staged"
      printf '%s\n' "$into" ;;
  esac
}

# restore_latest SET BUCKET PREFIX HOURLY DEST: the newest dated tarball of each name under PREFIX
# (flat_latest_dated), copied, checked against the listing (flat_verify) and put in place (flat_place).
# What was restored is kept in <sfs>/.comfyume/flat-SET.tsv: an unchanged object is not copied again.
restore_latest() {
  local set=$1 bucket=$2 prefix=$3 hourly=$4 dest=$5 work kept="${KEPT_DIR}/flat-${1}.tsv" staging
  local name key size etag lm placed restored=0 unchanged=0 n_failed=0 k_key k_etag
  work=$(mktemp -d)
  staging="${KEPT_DIR}/.staging-${set}"
  r2_flat_list "$bucket" "$prefix" "${work}/all"
  awk -F'\t' -v p="$prefix" 'substr($1, length(p) + 1) !~ /\//' "${work}/all" >"${work}/listing"
  flat_latest_dated "${work}/listing" "$hourly" >"${work}/latest"
  [[ -s ${work}/latest ]] ||
    die "no dated tarball in r2:${bucket}/${prefix} (expected ${prefix}<name>-<YYYY-MM-DD$([[ $hourly == 1 ]] && printf -- '-HH')>.tar.gz); check the bucket name, or leave ${set} out with --only"
  flat_pick_latest "$set" "$bucket" "$prefix" "${work}/latest"
  declare -gA KEPT=()
  if [[ -f $kept ]]; then
    while IFS=$'\t' read -r name key etag _ size _; do [[ $name == '#'* ]] || KEPT[$name]="${key}"$'\t'"${etag}"$'\t'"${size}"; done <"$kept"
  fi
  mkdir -p "$staging"
  : >"${work}/rows"
  while IFS=$'\t' read -r name key size etag lm; do
    IFS=$'\t' read -r k_key k_etag _ <<<"${KEPT[$name]:-}"
    if ((FORCE == 0)) && [[ $k_key == "$key" && $k_etag == "$etag" ]] && [[ -e $([[ $set == cache ]] && printf '%s/%s' "$dest" "$name" || printf '%s' "$dest") ]]; then
      unchanged=$((unchanged + 1))
      grep -F -- "${name}	${key}	" "$kept" >>"${work}/rows" || true
      continue
    fi
    log "restoring ${name}: r2:${bucket}/${key} (${size} bytes, ${lm})"
    if ! r2_rclone copyto --ignore-checksum "r2:${bucket}/${key}" "${staging}/${name}.tar.gz" 2>"${work}/err"; then
      log "MISSING: r2:${bucket}/${key} could not be copied: $(scrub "$(tail -n 2 "${work}/err")"); re-run, and check the object in the bucket"
      n_failed=$((n_failed + 1))
      continue
    fi
    if ! flat_verify "$bucket" "$key" "${staging}/${name}.tar.gz" "$size" "$etag"; then
      rm -f -- "${staging}/${name}.tar.gz"
      n_failed=$((n_failed + 1))
      continue
    fi
    placed=$(flat_place "$set" "${staging}/${name}.tar.gz" "$name" "$dest" "$lm")
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$key" "$etag" "$FLAT_SHA256" "$size" "$placed" >>"${work}/rows"
    restored=$((restored + 1))
  done <"${work}/latest"
  # Rows of names not restored this run stay (another name's failure must not forget them).
  if [[ -f $kept ]]; then awk -F'\t' 'NR == FNR { seen[$1] = 1; next } !/^#/ && !($1 in seen)' "${work}/rows" "$kept" >"${work}/rows.old"; fi
  touch "${work}/rows.old"
  { printf '# comfyume-flat-restored v1 r2:%s/%s: name\tkey\tetag\tsha256\tsize\tplaced\n' "$bucket" "$prefix"; LC_ALL=C sort "${work}/rows" "${work}/rows.old"; } >"${kept}.tmp"
  mv -f -- "${kept}.tmp" "$kept"
  rm -rf -- "$work" "$staging"
  COMFYUME_STEP_RESULT="${restored} restored, ${unchanged} unchanged"
  log "${set} from r2:${bucket}/${prefix}: ${COMFYUME_STEP_RESULT}"
  ((n_failed == 0)) || die "restoring ${set} from r2:${bucket}/${prefix}: ${n_failed} tarball(s) failed (each is named above)"
}

step prepare prepare
for set in ${ONLY//,/ }; do
  case $set in
    models) step models seed_models "$R2_MODELS_BUCKET" "$MODELS_DEST" ;;
    cache) step cache restore_latest cache "$R2_CACHE_BUCKET" config/ 0 "$CONFIG_DEST" ;;
    worker) step worker-image restore_latest worker "$R2_WORKER_BUCKET" "" 0 "$WORKER_IMAGE_TARBALL" ;;
    user-files) step user-files restore_latest user-files "$R2_USER_FILES_BUCKET" "" 1 "$USER_FILES_DEST" ;;
  esac
done
step_summary
