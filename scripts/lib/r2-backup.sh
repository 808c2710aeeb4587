# shellcheck shell=bash
# Backup of sets to R2: the set size guard, one set's backup, sets side by side, the verify that gates deletion.
# Part of the shared library: common.sh sources it; never source it on its own.

# ---- set size guard: an empty set, or one far smaller than its last verified backup, fails ----

BACKUP_SHRINK_TOLERANCE=0.5
BACKUP_ACCEPT_SHRINK=()

# validate_shrink_options: --shrink-tolerance is a fraction in [0,1]; --accept-shrink names a set.
validate_shrink_options() {
  local name
  [[ $BACKUP_SHRINK_TOLERANCE =~ ^(0|1|0?\.[0-9]+|1\.0*|0\.)$ ]] ||
    die "--shrink-tolerance '${BACKUP_SHRINK_TOLERANCE}' must be a fraction between 0 and 1 (config backup.shrinkTolerance; default 0.5)"
  for name in "${BACKUP_ACCEPT_SHRINK[@]}"; do
    [[ $name =~ ^[A-Za-z0-9._/-]+$ ]] || die "--accept-shrink '${name}' is not a set name (as printed in the failure message, e.g. models or scratch/outputs)"
  done
}

# check_set_size SET SRC MANIFEST LAST: refuse a set with no files, or whose file count or byte
# total fell below (1 - BACKUP_SHRINK_TOLERANCE) of LAST (its last verified backup, from R2),
# unless SET was accepted with --accept-shrink.
check_set_size() {
  local set=$1 src=$2 now=$3 last=$4 name accepted=false now_files now_bytes last_files last_bytes shrunk fix
  for name in "${BACKUP_ACCEPT_SHRINK[@]}"; do
    if [[ $name == "$set" ]]; then accepted=true; fi
  done
  read -r now_files now_bytes < <(manifest_totals "$now")
  read -r last_files last_bytes < <(manifest_totals "$last")
  fix="if that is what you want, accept it for one run with --accept-shrink ${set} (config backup.acceptShrink: [\"${set}\"]) and remove it afterwards"
  if [[ ${BACKUP_SIZE_BASELINE:-true} == false ]]; then
    log "set '${set}': ${now_files} file(s), ${now_bytes} bytes on a volume that started blank today (no size baseline)"
    return 0
  fi
  if ((now_files == 0)); then
    if [[ $accepted != true ]]; then
      die "set '${set}' is empty: no files under ${src} (last verified backup: ${last_files} file(s), ${last_bytes} bytes). A mount that is not there, or a path that moved? Check ${src}; ${fix}"
    fi
    warn "set '${set}' is empty; accepted with --accept-shrink ${set}"
    return 0
  fi
  [[ -s $last ]] || return 0
  shrunk=$(awk -v t="$BACKUP_SHRINK_TOLERANCE" -v nf="$now_files" -v nb="$now_bytes" -v lf="$last_files" -v lb="$last_bytes" \
    'BEGIN { print ((nf < (1 - t) * lf || nb < (1 - t) * lb) ? 1 : 0) }')
  if ((shrunk == 1)); then
    local what="set '${set}' shrank beyond the shrink tolerance ${BACKUP_SHRINK_TOLERANCE}: ${now_files} file(s), ${now_bytes} bytes now, ${last_files} file(s), ${last_bytes} bytes in the last verified backup ${R2_LAST_MANIFEST_KEY:-}"
    [[ $accepted == true ]] || die "${what}. Files deleted, or a path that moved? Check ${src}; ${fix}"
    warn "${what}; accepted with --accept-shrink ${set}"
  elif [[ $accepted == true ]]; then
    warn "--accept-shrink ${set} was given but the set did not shrink; remove it from backup.acceptShrink"
  fi
}

# r2_backup_tree SRC BUCKET PREFIX STATE_DIR SET: incremental, append-only backup of SRC.
# SET (the name --accept-shrink takes) must not come out empty or shrunk (check_set_size).
# Each file's bytes go under a content key that is proven good in this run: listed right and
# vouched for by the last verified manifest, or read back, or freshly sent and read back.
# Only then is the dated (v2) manifest written, naming each entry's key, and read back.
# Sets R2_BYTES_SENT, R2_DATA_BYTES, R2_MANIFEST_KEY.
r2_backup_tree() {
  local src=$1 bucket=$2 prefix=$3 state=$4 set=${5:-$3} stamp work manifest stage sha md5 size rel key action
  stamp=$(date -u +%Y-%m-%dT%H%M%SZ)
  work=$(mktemp -d)
  manifest="${work}/${stamp}.tsv"
  stage="${work}/stage"
  mkdir -p "$stage"
  log "hashing ${src}"
  build_manifest "$src" "${work}/local.tsv" "$(hash_state_file "$state" "$bucket" "$prefix")"
  r2_remote_listing "$bucket" "$prefix" "${work}/remote.tsv" "${work}/manifests.txt"
  if r2_last_manifest "$bucket" "$prefix" "${work}/last.tsv" "${work}/manifests.txt"; then
    log "last backup of this set: ${R2_LAST_MANIFEST_KEY} in bucket ${bucket}"
  else
    log "no earlier backup of this set under r2:${bucket}/${prefix}"
  fi
  check_set_size "$set" "$src" "${work}/local.tsv" "${work}/last.tsv"
  r2_plan_keys "${work}/local.tsv" "${work}/last.tsv" "${work}/remote.tsv" "${work}/plan.tsv"
  r2_sample_reused "${work}/plan.tsv" "$(r2_sample_cursor_file "$state" "$bucket" "$prefix")"
  r2_prove_candidates "$bucket" "$prefix" "${work}/plan.tsv"
  local base=$src
  [[ -f $src ]] && base=$(dirname "$src")
  local -A key_of=()
  local new_files=0 new_bytes=0
  : >"${work}/sent.keys"
  while IFS=$'\t' read -r sha key action size rel _; do
    key_of[$sha]=$key
    [[ $action == upload ]] || continue
    mkdir -p "$(dirname "${stage}/${key#objects/}")"
    ln -s "${base}/${rel}" "${stage}/${key#objects/}"
    printf '%s\n' "$key" >>"${work}/sent.keys"
    new_files=$((new_files + 1))
    new_bytes=$((new_bytes + size))
  done <"${work}/plan.tsv"
  R2_DATA_BYTES=0
  manifest_entries "${work}/local.tsv" >"${work}/local.entries"
  {
    printf '%s\n' "$COMFYUME_MANIFEST_HEADER_V2"
    while IFS=$'\t' read -r sha md5 size rel; do
      R2_DATA_BYTES=$((R2_DATA_BYTES + size))
      printf '%s\t%s\t%s\t%s\t%s\n' "$sha" "$md5" "$size" "$rel" "${key_of[$sha]}"
    done <"${work}/local.entries"
  } >"$manifest"
  log "${new_files} new object(s), ${new_bytes} bytes to send; data set ${R2_DATA_BYTES} bytes"
  R2_BYTES_SENT=0
  local jlog="${work}/rclone.jsonl"
  if ((new_files > 0)); then
    progress_begin sending "$new_files" "$new_bytes"
    progress_at 0 0 "(rclone copy to r2:${bucket}/${prefix}/objects, not started yet)"
    # --immutable: an existing key with other bytes is an error, never an overwrite. rclone's own
    # stats (every COMFYUME_PROGRESS_SECONDS) feed the progress report. --s3-disable-checksum:
    # before a multipart upload rclone would read the whole file once more for an MD5 it keeps
    # in the object's metadata; the check here is the SHA-256 of the bytes read back.
    if ! r2_rclone copy -L --immutable --no-traverse --s3-disable-checksum --use-json-log -v --stats "$((COMFYUME_PROGRESS_SECONDS > 0 ? COMFYUME_PROGRESS_SECONDS : 3600))s" \
      "$stage" "r2:${bucket}/${prefix}/objects" 2>&1 >/dev/null | progress_rclone_json "$jlog"; then
      progress_end failed
      r2_fail "uploading to r2:${bucket}/${prefix}" "$(grep -v '"level":"info"' "$jlog" | jq -r '.msg? // empty' 2>/dev/null | tail -n 3)"
    fi
    R2_BYTES_SENT=$(jq -s '[.[] | .stats.bytes? // 0] | max' "$jlog")
    progress_end
  fi
  # The objects first: a manifest is written only when every object it names verified.
  manifest_keyed_entries "$manifest" >"${work}/entries.tsv"
  r2_check_objects "$bucket" "$prefix" "${work}/entries.tsv" "${work}/sent.keys" 0 "${work}/remote.tsv"
  if ((R2_BAD_COUNT > 0)); then
    die "R2 object mismatch in r2:${bucket}/${prefix}: ${R2_BAD_COUNT} of ${R2_ENTRY_COUNT} object(s) missing or altered (named above); no manifest written, nothing overwritten. Re-run the backup: it uploads fresh copies under new keys"
  fi
  log "verified ${R2_ENTRY_COUNT} object(s) under r2:${bucket}/${prefix}: $(wc -l <"${work}/sent.keys") sent and read back (SHA-256), the others by listing"
  r2_free_manifest_key "$bucket" "$prefix" "$stamp" "${work}/manifests.txt"
  if ! r2_rclone copyto --immutable --use-json-log -v --stats 1h "$manifest" "r2:${bucket}/${R2_MANIFEST_KEY}" 2>"$jlog"; then
    r2_fail "uploading the manifest r2:${bucket}/${R2_MANIFEST_KEY}" "$(jq -r '.msg? // empty' "$jlog" 2>/dev/null | tail -n 3)"
  fi
  R2_BYTES_SENT=$((R2_BYTES_SENT + $(jq -s '[.[] | .stats.bytes? // 0] | max' "$jlog")))
  if ! r2_rclone copyto "r2:${bucket}/${R2_MANIFEST_KEY}" "${work}/readback.tsv" 2>"${work}/err"; then
    r2_fail "reading back the manifest r2:${bucket}/${R2_MANIFEST_KEY}" "$(cat "${work}/err")"
  fi
  cmp -s "$manifest" "${work}/readback.tsv" ||
    die "verification: manifest r2:${bucket}/${R2_MANIFEST_KEY} read back differs from the one just written; re-run the backup (a new dated manifest is written)"
  log "verified r2:${bucket}/${R2_MANIFEST_KEY}: ${R2_ENTRY_COUNT} object(s), sizes and hashes match"
  rm -rf "$work"
}

# r2_free_manifest_key BUCKET PREFIX STAMP NAMES: set R2_MANIFEST_KEY to PREFIX/manifests/<stamp>.tsv
# for a stamp that no manifest in NAMES (this run's listing of the set) holds. rclone's
# `copyto --immutable` replaces an existing object of other bytes ("Copied (replaced existing)"), so
# a second backup of the set within the same second would overwrite the first one's manifest: wait
# for the next second instead (5 tries), then stop. Runs of one set never overlap (the script's
# lock), so no manifest can appear between the listing and the write.
r2_free_manifest_key() {
  local bucket=$1 prefix=$2 stamp=$3 names=$4 try
  for try in 1 2 3 4 5; do
    R2_MANIFEST_KEY="${prefix}/manifests/${stamp}.tsv"
    grep -qxF "${stamp}.tsv" "$names" || return 0
    ((try < 5)) || break
    sleep 1
    stamp=$(date -u +%Y-%m-%dT%H%M%SZ)
  done
  die "a manifest r2:${bucket}/${R2_MANIFEST_KEY} already exists, and the clock gave the same second for 5 s; nothing was overwritten (the objects are in R2, unnamed by a manifest). Fix the host's clock (timedatectl) and re-run the backup"
}

# ---- sets side by side: each set's backup as a background job ----
# Sets are independent (own prefix, own hash state, own manifest), and a night with little changed
# is mostly fixed cost per set (rclone starts, listings, manifest round trips), so they run side by
# side: at most R2_BACKUP_PARALLEL at once (default 3). Each job's stderr is kept and printed
# whole, in start order, once all have ended; the log file gets each line as it happens.
R2_BACKUP_PARALLEL=${R2_BACKUP_PARALLEL:-3}
R2_BACKUP_JOBS=()

# r2_backup_job NAME CMD...: run `step NAME CMD...` as a background job (waits for a free slot).
# CMD sets R2_BYTES_SENT and R2_DATA_BYTES (as r2_backup_tree does).
r2_backup_job() {
  local name=$1
  shift
  [[ $R2_BACKUP_PARALLEL =~ ^[1-9][0-9]*$ ]] || die "R2_BACKUP_PARALLEL '${R2_BACKUP_PARALLEL}' must be a whole number of sets at once, 1 or more (default 3)"
  [[ -n ${R2_BACKUP_JOB_DIR:-} ]] || { R2_BACKUP_JOB_DIR=$(mktemp -d) && on_exit rm -rf "$R2_BACKUP_JOB_DIR"; }
  while (($(jobs -rp | wc -l) >= R2_BACKUP_PARALLEL)); do wait -n 2>/dev/null || true; done
  R2_BACKUP_JOBS+=("$name")
  local out="${R2_BACKUP_JOB_DIR}/${name//\//_}"
  # (errexit off around the job's subshell only, so its exit code is recorded; on inside it)
  {
    set +e
    (set -e && _r2_backup_job_run "$out" "$name" "$@") 2>"${out}.log"
    printf '%s\n' "$?" >"${out}.rc"
  } &
}

# (the job, in its subshell) its own traps and exit hooks (the script's would remove the job
# directory), the step, and its bytes.
_r2_backup_job_run() {
  local out=$1
  shift
  trap _on_exit EXIT
  trap _on_err ERR
  trap '_on_signal HUP 129' HUP
  trap '_on_signal INT 130' INT
  trap '_on_signal TERM 143' TERM
  COMFYUME_STEP_ROWS=()
  # shellcheck disable=SC2034  # the job's own exit hooks (common.sh) and progress reporter (progress.sh)
  COMFYUME_EXIT_HOOKS=() COMFYUME_PROGRESS_HOOKED=
  on_exit _r2_backup_job_end "$out"
  R2_BYTES_SENT=0 R2_DATA_BYTES=0
  step "$@"
  printf '%s %s\n' "$R2_BYTES_SENT" "$R2_DATA_BYTES" >"${out}.totals"
}

# (in the job, on exit) its summary rows and the cause of a failure, for r2_backup_jobs_wait.
_r2_backup_job_end() {
  printf '%s\n' "${COMFYUME_STEP_ROWS[@]}" >"$1.rows"
  printf '%s' "${COMFYUME_DIE_MESSAGE:-}" >"$1.cause"
}

# r2_backup_jobs_wait: wait for every job; print their logs; add their rows to the step summary and
# their bytes to TOTAL_SENT and TOTAL_DATA; die with the first failed set's cause (named as its step).
r2_backup_jobs_wait() {
  local name out rc row sent data failed=""
  wait || true
  for name in "${R2_BACKUP_JOBS[@]}"; do
    out="${R2_BACKUP_JOB_DIR}/${name//\//_}"
    cat "${out}.log" >&2 2>/dev/null || true
    rc=$(cat "${out}.rc" 2>/dev/null || echo 1)
    while IFS= read -r row; do [[ -z $row ]] || COMFYUME_STEP_ROWS+=("$row"); done <"${out}.rows" 2>/dev/null || true
    if [[ $rc == 0 ]] && read -r sent data <"${out}.totals" 2>/dev/null; then
      TOTAL_SENT=$((TOTAL_SENT + sent))
      TOTAL_DATA=$((TOTAL_DATA + data))
    elif [[ -z $failed ]]; then
      failed=$name
    fi
  done
  R2_BACKUP_JOBS=()
  [[ -n $failed ]] || return 0
  out="${R2_BACKUP_JOB_DIR}/${failed//\//_}"
  # shellcheck disable=SC2034  # read by die (common.sh)
  COMFYUME_CURRENT_STEP=$failed
  die "$(cat "${out}.cause" 2>/dev/null || true)$([[ -s ${out}.cause ]] || echo "set '${failed}' failed (exit $(cat "${out}.rc" 2>/dev/null || echo '?')); see its lines above")"
}

# r2_verify BUCKET MANIFEST_KEY: read back the manifest; every entry must be listed with its size
# and MD5; objects listed without an MD5 (multipart uploads) and, with R2_DEEP_VERIFY=1, all
# objects are downloaded and their SHA-256 checked. Names every missing or altered object.
r2_verify() {
  local bucket=$1 mkey=$2 work prefix
  work=$(mktemp -d)
  prefix=${mkey%/manifests/*}
  if ! r2_rclone copyto "r2:${bucket}/${mkey}" "${work}/manifest.tsv" 2>"${work}/err"; then
    r2_fail "reading back manifest r2:${bucket}/${mkey}" "$(cat "${work}/err")"
  fi
  manifest_keyed_entries "${work}/manifest.tsv" >"${work}/entries.tsv" || die "manifest r2:${bucket}/${mkey} is damaged (see above)"
  : >"${work}/none"
  r2_check_objects "$bucket" "$prefix" "${work}/entries.tsv" "${work}/none" 1
  rm -rf "$work"
  ((R2_BAD_COUNT == 0)) || die "R2 object mismatch: verification of r2:${bucket}/${mkey} failed: ${R2_BAD_COUNT} of ${R2_ENTRY_COUNT} object(s) missing or altered (named above). Run a backup (without --verify-only): it uploads fresh copies under new keys"
  log "verified r2:${bucket}/${mkey}: ${R2_ENTRY_COUNT} object(s), sizes and hashes match"
}

# r2_latest_manifest BUCKET PREFIX: key of the newest manifest (dated names sort by time).
r2_latest_manifest() {
  local out
  out=$(r2_rclone lsf --files-only "r2:$1/$2/manifests" 2>&1) || die "cannot list r2:$1/$2/manifests: $(scrub "$(tail -n 2 <<<"$out")")"
  out=$(grep -E '\.tsv$' <<<"$out" | LC_ALL=C sort | tail -n 1 || true)
  [[ -n $out ]] || return 1
  printf '%s/manifests/%s\n' "$2" "$out"
}

