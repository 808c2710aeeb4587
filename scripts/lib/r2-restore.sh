# shellcheck shell=bash
# Restore of sets from R2: fetch and hash in one pass, install verified files, several sets at once.
# Part of the shared library: common.sh sources it; never source it on its own.

# r2_fetch_hashed BUCKET PREFIX STAGING FETCH_TSV HASHES: download every object of FETCH_TSV
# ("key under objects/<TAB>size") into STAGING and hash it in the same pass. Large objects
# stream through their SHA-256 (_r2_stream_big); the others come in ONE curl run
# (_r2_get_many, COMFYUME_R2_TRANSFERS at a time, default 16), each file hashed as soon as curl
# reports it complete, in batches (one openssl per ~64 MiB or 500 files, two at a time): one
# pass, the bytes still in the page cache, hashing overlapped with the downloads, the tail only
# the last batch. Output: HASHES.N files of "sha256<TAB>path". The caller's SHA-256 check against
# the manifest is the one check of every byte. (curl, not rclone: about half the CPU per GB here
# and ~5 ms per start against ~40 ms; docs/backups.md.) A staged file of the right size (an
# interrupted run's) is hashed, not fetched again.
r2_fetch_hashed() {
  local bucket=$1 prefix=$2 staging=$3 fetch=$4 hashes=$5 streamer=''
  [[ ${COMFYUME_R2_TRANSFERS:-1} =~ ^[1-9][0-9]*$ ]] || die "COMFYUME_R2_TRANSFERS='${COMFYUME_R2_TRANSFERS}' is not a whole number of at least 1; fix or unset it"
  find "$staging" -type f -printf '%P\t%s\n' 2>/dev/null >"${hashes}.staged" || true
  # HASHES.have: already staged with the right size. Of the rest, objects of at least
  # COMFYUME_R2_STREAM_MIN_BYTES (200 MiB: rclone's upload cutoff, so every multipart object the
  # backup sent) go to HASHES.big ("key<TAB>size"): hashed while they stream in, so a 25 GB model
  # is not hashed after it arrived, and their multipart ETag checked in the same read
  # (r2_read_checked); the others (HASHES.get) in one rclone copy run.
  awk -F'\t' -v have="${hashes}.have" -v get="${hashes}.get" -v big="${hashes}.big" \
    -v min="${COMFYUME_R2_STREAM_MIN_BYTES:-209715200}" -v staged_list="${hashes}.staged" '
    BEGIN { while ((getline line < staged_list) > 0) { split(line, f, "\t"); staged[f[1]] = f[2] } }
    ($1 in staged) && staged[$1] == $2 { print $1 > have; next }
    $2 + 0 >= min + 0 { print $1 "\t" $2 > big; next }
    { print $1 > get }' "$fetch"
  touch "${hashes}.have" "${hashes}.get" "${hashes}.big"
  # The streamer runs in its own process group (set -m), which the exit hook kills: a restore that
  # fails or is stopped leaves no download running behind it, writing into the staging directory
  # and holding the lock's file descriptor (a re-run would be refused as overlapping).
  # (no streamer at all when nothing is large: a fork of this shell costs ~0.3 s under load)
  if [[ -s ${hashes}.big ]]; then
    set -m
    _r2_stream_big "$bucket" "$prefix" "$staging" "$hashes" &
    streamer=$!
    set +m
    R2_STREAMER_PGID=$streamer
    # (inside a set run by r2_restore_step_bg: the script's stop hook kills it too, at once, not
    # only through the set's own hook, which a set busy in a pipeline runs late)
    if [[ -n ${R2_BG_DIR:-} ]]; then printf '%s\n' "$streamer" >>"${R2_BG_DIR}/streamers"; fi
    if [[ -z ${R2_STREAMER_HOOKED:-} ]]; then
      R2_STREAMER_HOOKED=1
      on_exit _r2_stop_streamer
    fi
  fi
  {
    cat "${hashes}.have"
    if [[ -s ${hashes}.get ]]; then
      # Each object not fetched is logged with its cause (and named by the caller).
      _r2_get_many "$bucket" "${prefix}/objects" "$staging" "${hashes}.get" || true
    fi
  } | _r2_hash_completed "$staging" "$fetch" "$hashes"
  if [[ -n ${streamer:-} ]]; then wait "$streamer" || true; fi
  R2_STREAMER_PGID=
}

# _r2_stop_streamer: (exit hook) kill the running streamer's process group, if any.
_r2_stop_streamer() {
  local job
  # Every job of this shell that leads a process group (only those started under set -m do): also
  # a streamer forked an instant before its pid was recorded.
  for job in $(jobs -p) ${R2_STREAMER_PGID:-}; do kill -TERM -- "-${job}" 2>/dev/null || true; done
  if [[ -n ${R2_STREAMER_PGID:-} ]]; then wait "$R2_STREAMER_PGID" 2>/dev/null || true; fi
  R2_STREAMER_PGID=
}

# _r2_stream_big BUCKET PREFIX STAGING HASHES: each key of HASHES.big, four at a time, streamed
# through curl into STAGED and its SHA-256 (r2_stream_hash: one pass over the bytes, nothing
# re-read). Writes HASHES.9sN ("sha256<TAB>path"); a failed stream leaves no staged file (the
# caller names the file not restored, and compares the SHA-256 with the manifest's).
# No multipart-ETag compare here: the restore's proof is the SHA-256 against the manifest, and bytes
# that pass it are the ones the backup hashed whatever R2's record says; refusing them failed a
# morning for metadata alone, and the ETag's MD5s cost ~1.3 CPU-s per GB (docs/backups.md). The
# nightly read-back (r2_hash_objects) keeps the compare and heals a bad record under a new key.
_r2_stream_big() {
  local bucket=$1 prefix=$2 staging=$3 hashes=$4 key running=0 n=0
  # (no job control inside: every download stays in this process group)
  set +m
  while IFS=$'\t' read -r key _; do
    if ((running >= 4)); then wait -n || true; running=$((running - 1)); fi
    _r2_stream_one "$bucket" "${prefix}/objects/${key}" "${staging}/${key}" "${hashes}.9s${n}" "${hashes}.err.s${n}" &
    running=$((running + 1)) n=$((n + 1))
  done <"${hashes}.big"
  wait || true
}

# _r2_stream_one BUCKET KEY STAGED OUT ERR: one large object into STAGED, hashed as it streams; on success
# "sha256<TAB>STAGED" in OUT, else the failure logged (from ERR) and nothing staged.
_r2_stream_one() {
  local bucket=$1 key=$2 staged=$3 out=$4 err=$5 rc=0
  mkdir -p -- "${staged%/*}"
  STREAM_ERR=$err r2_stream_hash "r2:${bucket}/${key}" 0 "$staged" || rc=$?
  if ((rc == 0)); then
    printf '%s\t%s\n' "$STREAM_SHA256" "$staged" >"$out"
    return 0
  fi
  log "download of r2:${bucket}/${key} failed: $(_r2_get_failure "$err")"
  rm -f -- "$staged"
}

# _r2_get_failure ERR_FILE: the download's error, scrubbed, with the fix where the cause is known.
_r2_get_failure() {
  local text
  text=$(scrub "$(tail -n 2 "$1" 2>/dev/null | tr '\n' ' ')")
  if grep -qiE "$R2_CURL_UNREACHABLE|connection refused" <<<"$text"; then
    text+=" (R2 unreachable at ${R2_ENDPOINT}, or it went away mid-download: check the network and --r2-endpoint, then re-run; verified files are kept and not fetched again)"
  elif grep -qE 'error: 40[13]' <<<"$text"; then
    text+=" (access denied: check R2_ACCESS_KEY_ID / R2_SECRET_ACCESS_KEY and that the token may read the bucket)"
  elif grep -qE 'error: 404' <<<"$text"; then
    text+=" (the object is not in the bucket)"
  fi
  printf '%s' "$text"
}

# _r2_get_many BUCKET PREFIX STAGING KEYS: download every key of the file KEYS (one a line, under
# PREFIX) to STAGING/<key> in ONE curl (--parallel, COMFYUME_R2_TRANSFERS at a time, default 16),
# a GET per object and no HEAD; prints each key as soon as its transfer completed whole (stdout).
# A transfer that failed is logged with its cause and fix (_r2_get_failure) and its partial file
# removed. The keys reach curl on its stdin with the URLs (_r2_curl), never on a command line.
_r2_get_many() {
  local bucket=$1 prefix=$2 staging=$3 keys=$4 code http file msg key failed=0
  local base="${R2_ENDPOINT%/}/${bucket}/${prefix}"
  # curl's config: a url and an output per key (keys percent-encoded, slashes kept; quoted).
  BASE=$base STAGING=$staging perl -ne '
    chomp; next unless length;
    (my $u = $_) =~ s/([^A-Za-z0-9\-._~\/])/sprintf("%%%02X", ord($1))/ge;
    my $o = "$ENV{STAGING}/$_"; $o =~ s/(["\\])/\\$1/g; (my $b = "$ENV{BASE}/$u") =~ s/(["\\])/\\$1/g;
    print "url = \"$b\"\noutput = \"$o\"\n";' "$keys" >"${keys}.curl"
  while IFS=$'\t' read -r code http file msg; do
    key=${file#"${staging}/"}
    if [[ $code == 0 && $http == 2* ]]; then
      printf '%s\n' "$key"
    else
      rm -f -- "$file"
      failed=$((failed + 1))
      # (five named with the cause; a bucket that is down does not print thousands of lines)
      ((failed > 5)) && continue
      printf '%s\n' "$msg" >"${keys}.err1"
      log "download of r2:${bucket}/${prefix}/${key} failed: $(_r2_get_failure "${keys}.err1")"
    fi
  done < <(_r2_curl --more-config "${keys}.curl" --parallel --parallel-max "${COMFYUME_R2_TRANSFERS:-16}" --create-dirs --fail \
    --max-time 0 --speed-limit 1024 --speed-time 120 -w '%{exitcode}\t%{http_code}\t%{filename_effective}\t%{errormsg}\n' 2>/dev/null)
  ((failed <= 5)) || log "... and $((failed - 5)) more download(s) from r2:${bucket}/${prefix} failed (the same way, or see above)"
  rm -f "${keys}.curl" "${keys}.err1"
}

# _r2_hash_completed STAGING FETCH_TSV HASHES: hash the staged files whose keys arrive on stdin
# (each complete), in batches of ~64 MiB or 500 files, at most two at a time, each batch through
# sha256_batch (HASHES.N from the list HASHES.list.N).
_r2_hash_completed() {
  local staging=$1 fetch=$2 hashes=$3 key size n=0 running=0 bytes=0
  local -a batch=()
  local -A sizes=()
  while IFS=$'\t' read -r key size; do sizes[$key]=$size; done <"$fetch"
  _flush() {
    ((${#batch[@]})) || return 0
    if ((running >= 2)); then wait -n || true; running=$((running - 1)); fi
    printf '%s\0' "${batch[@]}" >"${hashes}.list.${n}"
    sha256_batch "${hashes}.list.${n}" "${hashes}.${n}" &
    running=$((running + 1)) n=$((n + 1)) bytes=0
    batch=()
  }
  while IFS= read -r key; do
    batch+=("${staging}/${key}")
    bytes=$((bytes + ${sizes[$key]:-0}))
    if ((bytes >= 64 * 1048576 || ${#batch[@]} >= 500)); then _flush; fi
  done
  _flush
  wait || true
}

# r2_install_staged LIST: put each verified staged file at its target (LIST: NUL-separated staged,
# target, sha256, ...). Hard links (same inode, so the bytes are the ones just hashed) appear whole
# under their final names, all made by ONE process: a process start per file (`ln`) cost ~9 ms
# here, seconds for a scratch of thousands of files (perl-base is essential on Debian/Ubuntu).
# Where a link to TARGET fails, a link to TARGET.comfyume-partial is renamed over it; where links
# fail altogether, a copy goes to TARGET.comfyume-partial, is hashed again and only then renamed.
# A partial copy left by an interrupted earlier run is ours: it is dropped. Sets
# R2_INSTALL_FAILED to the number of targets not placed (each logged).
r2_install_staged() {
  local list=$1 staged target sha got
  R2_INSTALL_FAILED=0
  [[ -s $list ]] || return 0
  while IFS= read -r -d '' staged && IFS= read -r -d '' target && IFS= read -r -d '' sha; do
    if cp -f -- "$staged" "${target}.comfyume-partial" && got=$(sha256sum <"${target}.comfyume-partial") &&
      [[ ${got%% *} == "$sha" ]] && mv -f -- "${target}.comfyume-partial" "$target"; then
      continue
    fi
    rm -f -- "${target}.comfyume-partial"
    log "INSTALL FAILED: could not place ${target} (see above)"
    R2_INSTALL_FAILED=$((R2_INSTALL_FAILED + 1))
  done < <(perl -0 -e '
    while (defined(my $staged = <STDIN>)) {
      my $target = <STDIN>; my $sha = <STDIN>;
      chomp $staged; chomp $target; chomp $sha;
      my $partial = "$target.comfyume-partial";
      if (link $staged, $target) { unlink $partial if -e $partial; next; }
      unlink $partial;
      next if link($staged, $partial) && rename($partial, $target);
      print "$staged\0$target\0$sha\0";
    }' <"$list")
}

# r2_restore_tree BUCKET MANIFEST_KEY DEST [REPAIR]: bring DEST to the manifest's content.
# Files already right are kept (resumable). Missing objects are fetched with a few rclone runs
# into DEST/.comfyume-staging (same filesystem; survives an interruption, so a re-run only
# fetches what is still missing), each is SHA-256-checked (one read, batched: r2_fetch_hashed)
# and only then linked into place. Every entry's SHA-256 is checked once, so the caller need not
# check again. A local file that differs is an error unless REPAIR=1, which moves it aside
# (never deletes it). A bad or missing object is named and never installed.
r2_restore_tree() {
  local bucket=$1 mkey=$2 dest=$3 repair=${4:-0} work prefix sha size rel key target got staging staged
  work=$(mktemp -d)
  prefix=${mkey%/manifests/*}
  staging="${dest}/.comfyume-staging"
  # (curl: a start costs ~5 ms of CPU, rclone's ~40 ms; one per set)
  if ! _r2_get "$bucket" "$mkey" >"${work}/manifest.tsv" 2>"${work}/err"; then
    die "cannot read manifest r2:${bucket}/${mkey}: $(_r2_get_failure "${work}/err")"
  fi
  validate_manifest_paths "${work}/manifest.tsv" "$dest" "r2:${bucket}/${mkey}"
  # Each entry's bytes are read from the key its manifest names (v2), or its content key (v1).
  manifest_keyed_entries "${work}/manifest.tsv" >"${work}/entries.tsv" || die "manifest r2:${bucket}/${mkey} is damaged (see above)"
  local kept=0 failed=0 need=0 fetched=0
  local -A wanted=()
  require_cmd perl
  : >"${work}/install"
  # Files already there: hashed in one batch.
  while IFS=$'\t' read -r sha _ size rel key; do
    if [[ -f ${dest}/${rel} ]]; then printf '%s\0' "${dest}/${rel}"; fi
  done <"${work}/entries.tsv" >"${work}/present"
  sha256_batch "${work}/present" "${work}/present.sha"
  sha256_load "${work}/present.sha"
  : >"${work}/fetch.tsv"
  : >"${work}/todo.tsv"
  while IFS=$'\t' read -r sha _ size rel key; do
    target="${dest}/${rel}"
    if [[ -f $target ]]; then
      got=${COMFYUME_SHA256[$target]:-unreadable}
      if [[ $got == "$sha" ]]; then
        kept=$((kept + 1))
        continue
      fi
      if [[ $repair != 1 ]]; then
        log "MISMATCH: ${target} differs from the manifest (sha256 ${got}, expected ${sha}); re-run with --repair to move it aside and fetch the R2 copy"
        failed=$((failed + 1))
        continue
      fi
      mv "$target" "${target}.corrupt-$(date -u +%Y%m%dT%H%M%SZ)"
      log "moved aside the differing ${target}"
    fi
    printf '%s\t%s\t%s\t%s\n' "$sha" "$size" "$rel" "$key" >>"${work}/todo.tsv"
    if [[ -z ${wanted[$key]:-} ]]; then
      wanted[$key]=1
      printf '%s\t%s\n' "${key#objects/}" "$size" >>"${work}/fetch.tsv"
      [[ -f ${staging}/${key#objects/} ]] || need=$((need + size))
    fi
  done <"${work}/entries.tsv"
  if [[ -s ${work}/fetch.tsv ]]; then
    mkdir -p "$dest"
    _r2_reserve_space "$dest" $((need / 1048576)) "restoring $((need / 1048576)) MiB from r2:${bucket}/${prefix}"
    mkdir -p "$staging"
    log "fetching $(wc -l <"${work}/fetch.tsv") object(s) from r2:${bucket}/${prefix}"
    # shellcheck disable=SC2046  # two numbers
    progress_begin fetching $(awk -F'\t' '{ n++; b += $2 } END { printf "%d %.0f", n, b }' "${work}/fetch.tsv") "$staging" "${work}/fetch.tsv"
    r2_fetch_hashed "$bucket" "$prefix" "$staging" "${work}/fetch.tsv" "${work}/hashes"
    progress_end
    sha256_load "${work}"/hashes.[0-9]*
    # Directories of the targets, created in one run.
    awk -F'\t' '{ n = split($3, p, "/"); if (n > 1) { d = p[1]; for (i = 2; i < n; i++) d = d "/" p[i]; print d } }' "${work}/todo.tsv" |
      LC_ALL=C sort -u | (cd "$dest" && xargs -r -d '\n' mkdir -p --)
  fi
  while IFS=$'\t' read -r sha size rel key; do
    target="${dest}/${rel}"
    staged="${staging}/${key#objects/}"
    if [[ ! -f $staged ]]; then
      log "MISSING/UNREADABLE: r2:${bucket}/${prefix}/${key} (${rel})"
      failed=$((failed + 1))
      continue
    fi
    got=${COMFYUME_SHA256[$staged]:-unreadable}
    if [[ $got != "$sha" ]]; then
      log "HASH MISMATCH: r2:${bucket}/${prefix}/${key} (${rel}) downloaded with sha256 ${got}, manifest says ${sha}; not installed"
      # Our own download, proven wrong: removing it is safe.
      rm -f -- "$staged"
      failed=$((failed + 1))
      continue
    fi
    printf '%s\0%s\0%s\0' "$staged" "$target" "$sha" >>"${work}/install"
    fetched=$((fetched + 1))
  done <"${work}/todo.tsv"
  r2_install_staged "${work}/install"
  failed=$((failed + R2_INSTALL_FAILED))
  fetched=$((fetched - R2_INSTALL_FAILED))
  unset COMFYUME_SHA256
  if ((failed == 0)) && [[ -d $staging ]]; then
    # Everything is in place: the staging area only holds our own verified downloads.
    rm -rf -- "$staging"
  fi
  # shellcheck disable=SC2034  # results read by the calling script
  {
    R2_RESTORED_MANIFEST=$(mktemp)
    R2_RESTORE_FETCHED=$fetched
    R2_RESTORE_KEPT=$kept
  }
  cp "${work}/manifest.tsv" "$R2_RESTORED_MANIFEST"
  rm -rf "$work"
  ((failed == 0)) || die "restore of r2:${bucket}/${mkey} into ${dest}: ${failed} file(s) failed (listed above); ${fetched} fetched, ${kept} already present"
  log "restored r2:${bucket}/${mkey} into ${dest}: ${fetched} fetched, ${kept} already present"
}

# ---- several sets restored at once ----
# Restored one after another, each set paid its fixed costs (rclone starts, the manifest's checks,
# the last file's hash, the install) alone, and a set of one large file used one download stream.

# r2_restore_step_bg NAME CMD...: run CMD (one set's restore) as step NAME in a background
# subshell, at most COMFYUME_R2_PARALLEL_SETS (default 3) at a time; r2_restore_steps_wait
# collects them. Each runs in its own process group with its own exit hooks (its streamer, its
# progress): stopping the script stops them all (_r2_restore_steps_stop).
r2_restore_step_bg() {
  local name=$1
  shift
  [[ ${COMFYUME_R2_PARALLEL_SETS:-3} =~ ^[1-9][0-9]*$ ]] ||
    die "COMFYUME_R2_PARALLEL_SETS='${COMFYUME_R2_PARALLEL_SETS}' is not a whole number of sets restored at once (at least 1); fix or unset it"
  if [[ -z ${R2_BG_DIR:-} ]]; then
    R2_BG_DIR=$(mktemp -d)
    R2_BG_PGIDS=()
    on_exit _r2_restore_steps_stop
  fi
  while (($(jobs -pr | wc -l) >= ${COMFYUME_R2_PARALLEL_SETS:-3})); do wait -n || true; done
  printf '%s\n' "$name" >>"${R2_BG_DIR}/order"
  set -m
  _r2_restore_step_run "$name" "$@" &
  R2_BG_PGIDS+=("$!")
  set +m
}

# (the body of a set's background subshell) the script's traps again (a subshell starts without
# them) and hooks of its own: the parent's are not the set's to run.
_r2_restore_step_run() {
  set +m
  trap _on_err ERR
  trap _on_exit EXIT
  trap '_on_signal HUP 129' HUP
  trap '_on_signal INT 130' INT
  trap '_on_signal TERM 143' TERM
  # shellcheck disable=SC2034  # the step's own exit hooks (common.sh) and progress reporter (progress.sh)
  COMFYUME_EXIT_HOOKS=() COMFYUME_STEP_ROWS=() COMFYUME_PROGRESS_HOOKED='' R2_STREAMER_HOOKED=''
  on_exit _r2_restore_step_report "${R2_BG_DIR}/${1}"
  step "$@"
}

# (exit hook of a set's subshell) its exit code and step row(s), for r2_restore_steps_wait.
_r2_restore_step_report() {
  printf '%s\n' "${COMFYUME_STEP_ROWS[@]}" >"${1}.rows"
  printf '%s\n' "$COMFYUME_EXIT_CODE" >"${1}.rc"
}

# r2_restore_steps_wait: wait for every set started by r2_restore_step_bg; their rows join this
# script's step summary; die naming each set that failed (its cause is logged above it).
r2_restore_steps_wait() {
  local name rc row
  local -a failed=() names=()
  [[ -n ${R2_BG_DIR:-} ]] || return 0
  wait || true
  mapfile -t names <"${R2_BG_DIR}/order"
  # shellcheck disable=SC2034  # read by die (common.sh)
  COMFYUME_CURRENT_STEP=$(IFS=,; printf '%s' "${names[*]}")
  R2_BG_PGIDS=()
  while IFS= read -r name; do
    rc=$(cat "${R2_BG_DIR}/${name}.rc" 2>/dev/null) || rc=killed
    if [[ -f ${R2_BG_DIR}/${name}.rows ]]; then
      while IFS= read -r row; do [[ -z $row ]] || COMFYUME_STEP_ROWS+=("$row"); done <"${R2_BG_DIR}/${name}.rows"
    fi
    [[ $rc == 0 ]] || failed+=("$name")
  done <"${R2_BG_DIR}/order"
  rm -rf -- "$R2_BG_DIR"
  R2_BG_DIR=
  ((${#failed[@]} == 0)) || step_summary
  ((${#failed[@]} == 0)) ||
    die "restore of ${failed[*]} failed (each cause is logged above); the other sets are in place. Fix the cause and re-run: files already in place are kept, only the rest is fetched"
}

# (exit hook) stop the sets still running: each set's own hooks then stop its downloads.
_r2_restore_steps_stop() {
  local pgid tries left state
  ((${#R2_BG_PGIDS[@]})) || return 0
  local -a streamers=()
  if [[ -n ${R2_BG_DIR:-} && -f ${R2_BG_DIR}/streamers ]]; then mapfile -t streamers <"${R2_BG_DIR}/streamers"; fi
  for pgid in "${R2_BG_PGIDS[@]}" "${streamers[@]}"; do kill -TERM -- "-${pgid}" 2>/dev/null || true; done
  # Wait for them (their hooks stop their downloads), so that nothing of this run holds the lock
  # once the script has exited; a set still running after 10 s is killed. (Polled: a watchdog
  # process would itself hold the lock's descriptor.)
  for ((tries = 0; tries < 100; tries++)); do
    left=0
    for pgid in "${R2_BG_PGIDS[@]}"; do
      state=Z
      read -r _ _ state _ <"/proc/${pgid}/stat" 2>/dev/null || true
      [[ $state == Z ]] || left=1
    done
    ((left)) || break
    sleep 0.1
  done
  for pgid in "${R2_BG_PGIDS[@]}" "${streamers[@]}"; do kill -KILL -- "-${pgid}" 2>/dev/null || true; done
  wait "${R2_BG_PGIDS[@]}" 2>/dev/null || true
  R2_BG_PGIDS=()
  if [[ -n ${R2_BG_DIR:-} ]]; then rm -rf -- "$R2_BG_DIR"; fi
}

# _r2_reserve_space DEST NEED_MB WHAT: require_free_mb for NEED_MB plus MIN_FREE_MB plus what the
# other sets restored at once (r2_restore_step_bg) reserved: sets checked side by side must not
# each count the same free space. (Bytes the others already wrote are counted twice: on the safe side.)
_r2_reserve_space() {
  local dest=$1 need=$2 what=$3 others=0 fd
  if [[ -z ${R2_BG_DIR:-} ]]; then
    require_free_mb "$dest" $((need + ${MIN_FREE_MB:-1024})) "$what"
    return
  fi
  exec {fd}>>"${R2_BG_DIR}/reserved"
  flock "$fd"
  others=$(awk '{ s += $1 } END { print s + 0 }' "${R2_BG_DIR}/reserved")
  require_free_mb "$dest" $((need + others + ${MIN_FREE_MB:-1024})) "${what}, and ${others} MiB for the sets restored alongside"
  printf '%s\n' "$need" >&"$fd"
  exec {fd}>&-
}

