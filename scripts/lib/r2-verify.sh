# shellcheck shell=bash
# Verification against R2: what a manifest names is there, with the bytes it names (read back and hashed).
# Part of the shared library: common.sh sources it; never source it on its own.

# r2_hash_objects BUCKET PREFIX KEYS OUT [FIX]: download every key listed in KEYS ("objects/...",
# relative to PREFIX; optionally "<TAB>size"), hashing it as it streams (nothing kept on disk or in
# memory), and write "key<TAB>sha256" to OUT for each object read. A key absent from OUT could not
# be read, or (objects of R2_MULTIPART_MIN_BYTES or more, four at a time: r2_read_checked) has a
# multipart ETag in R2 that its bytes do not give: those are logged with FIX and listed in OUT.etag.
r2_hash_objects() {
  local bucket=$1 prefix=$2 keys=$3 out=$4 fix=${5:-} list err hash path key size running=0 n=0
  list=$(mktemp)
  err=$(mktemp)
  awk -F'\t' -v big="${list}.big" -v min="$R2_MULTIPART_MIN_BYTES" '
    { sub(/^objects\//, "", $1) }
    $2 != "" && $2 + 0 >= min + 0 { print $1 "\t" $2 > big; next }
    { print $1 }' "$keys" | LC_ALL=C sort -u >"$list"
  touch "${list}.big"
  : >"$out"
  : >"${out}.etag"
  if [[ -s $list ]]; then
    # --fast-list: one listing of the set (1,000 keys a request) instead of one per objects/xx/.
    if ! r2_rclone hashsum sha256 --download --fast-list --files-from "$list" "r2:${bucket}/${prefix}/objects" >"${list}.out" 2>"$err"; then
      # Objects that could not be read are reported by the caller; an unreachable R2 stops here.
      grep -qiE "connection refused|no such host|i/o timeout|dial tcp|network is unreachable|$R2_CURL_UNREACHABLE" "$err" &&
        r2_fail "reading back objects under r2:${bucket}/${prefix}" "$(cat "$err")"
      warn "read-back of r2:${bucket}/${prefix}: $(scrub "$(tail -n 2 "$err" | tr '\n' ' ')")"
    fi
    while read -r hash path; do
      if [[ -n $path ]]; then printf 'objects/%s\t%s\n' "$path" "$hash"; fi
    done <"${list}.out" >"$out"
  fi
  # Large objects one stream each (SHA-256 and, when multipart, the ETag in the same read).
  while IFS=$'\t' read -r key size; do
    if ((running >= 4)); then wait -n || true; running=$((running - 1)); fi
    (
      # shellcheck disable=SC2034  # read by r2_stream_hash (r2.sh)
      STREAM_ERR="${list}.err.${n}"
      rc=0
      r2_read_checked "$bucket" "${prefix}/objects/${key}" "$size" "$fix" || rc=$?
      if ((rc == 0)); then
        printf 'objects/%s\t%s\n' "$key" "$STREAM_SHA256" >"${list}.big.${n}"
      elif ((rc == 2)); then
        printf 'objects/%s\n' "$key" >"${list}.bad.${n}"
      fi
    ) &
    running=$((running + 1)) n=$((n + 1))
  done < <(LC_ALL=C sort -u "${list}.big")
  wait || true
  if ((n > 0)); then
    cat "${list}".big.[0-9]* >>"$out" 2>/dev/null || true
    cat "${list}".bad.[0-9]* >>"${out}.etag" 2>/dev/null || true
    if grep -qiE "connection refused|no such host|i/o timeout|dial tcp|network is unreachable|$R2_CURL_NO_CONNECT" "${list}".err.[0-9]* 2>/dev/null; then
      r2_fail "reading back objects under r2:${bucket}/${prefix}" "$(cat "${list}".err.[0-9]*)"
    fi
  fi
  rm -f "$list" "${list}".* "$err"
}

# r2_remote_listing BUCKET PREFIX OUT [MANIFEST_NAMES]: "key<TAB>size<TAB>md5" of every object under
# PREFIX/objects; with MANIFEST_NAMES, the names under PREFIX/manifests too, from the same listing.
# One recursive listing, 1,000 keys a request (--fast-list), and no request per object: rclone
# would HEAD every object for its modification time (--no-modtime; the engine never uses it).
# Objects listed without an MD5 ETag (multipart) still cost a HEAD each (rclone reads its own MD5
# from their metadata): a few dozen large files. A bucket that cannot be listed is named.
r2_remote_listing() {
  local bucket=$1 prefix=$2 out=$3 names=${4:-} json what=objects
  json=$(mktemp)
  [[ -z $names ]] || what=""
  if ! r2_rclone lsjson -R --fast-list --files-only --no-modtime --no-mimetype --hash --hash-type MD5 "r2:${bucket}/${prefix}/${what}" >"$json" 2>"${json}.err"; then
    # A prefix with no objects yet lists as empty on S3; anything else is an error.
    local err
    err=$(cat "${json}.err")
    rm -f "$json" "${json}.err"
    r2_check_bucket "$bucket"
    r2_fail "listing r2:${bucket}/${prefix}/${what}" "$err"
  fi
  if [[ -n $names ]]; then
    jq -r '.[] | select(.Path | startswith("objects/")) | [.Path, (.Size | tostring), (.Hashes.md5 // "")] | @tsv' "$json" | LC_ALL=C sort >"$out"
    jq -r '.[] | select(.Path | startswith("manifests/")) | .Path[10:]' "$json" >"$names"
  else
    jq -r '.[] | ["objects/" + .Path, (.Size | tostring), (.Hashes.md5 // "")] | @tsv' "$json" | LC_ALL=C sort >"$out"
  fi
  rm -f "$json" "${json}.err"
}

# r2_check_objects BUCKET PREFIX ENTRIES READBACK [NO_MD5_READBACK [LISTING]]: ENTRIES holds keyed
# manifest entries (manifest_keyed_entries). Every key must be listed with the entry's size (and
# MD5, when the listing has one); the keys in READBACK (one a line), every key with
# R2_DEEP_VERIFY=1, and with NO_MD5_READBACK=1 those listed without an MD5, are downloaded and
# their SHA-256 checked. LISTING (r2_remote_listing) spares listing again: a key read back right is
# proven even if that listing predates its upload. Logs one VERIFY line per bad object; sets
# R2_BAD_COUNT, R2_ENTRY_COUNT.
r2_check_objects() {
  local bucket=$1 prefix=$2 entries=$3 readback=$4 no_md5=${5:-0} listing=${6:-} work sha md5 size rel key got
  work=$(mktemp -d)
  if [[ -n $listing ]]; then cp "$listing" "${work}/remote.tsv"; else r2_remote_listing "$bucket" "$prefix" "${work}/remote.tsv"; fi
  local -A rsize=() rmd5=() hashed=()
  while IFS=$'\t' read -r key size md5; do
    rsize[$key]=$size
    rmd5[$key]=$md5
  done <"${work}/remote.tsv"
  cp "$readback" "${work}/readback"
  while IFS=$'\t' read -r sha md5 size rel key; do
    if [[ ${R2_DEEP_VERIFY:-0} == 1 || ($no_md5 == 1 && -n ${rsize[$key]:-} && -z ${rmd5[$key]}) ]]; then
      printf '%s\n' "$key" >>"${work}/readback"
    fi
  done <"$entries"
  # (with each entry's size: large objects are read one stream each, their multipart ETag checked)
  awk -F'\t' 'FNR == NR { size[$5] = $3; next } { print $1 "\t" size[$1] }' "$entries" "${work}/readback" >"${work}/readback.sized"
  r2_hash_objects "$bucket" "$prefix" "${work}/readback.sized" "${work}/hashed.tsv" \
    "A backup run (not --verify-only) uploads a fresh copy under a new key; nothing is overwritten"
  while IFS=$'\t' read -r key got; do hashed[$key]=$got; done <"${work}/hashed.tsv"
  local -A wanted=() etag_bad=()
  while IFS= read -r key; do wanted[$key]=1; done <"${work}/readback"
  while IFS= read -r key; do etag_bad[$key]=1; done <"${work}/hashed.tsv.etag"
  R2_BAD_COUNT=0
  R2_ENTRY_COUNT=0
  while IFS=$'\t' read -r sha md5 size rel key; do
    R2_ENTRY_COUNT=$((R2_ENTRY_COUNT + 1))
    got=${hashed[$key]:-}
    # Read back and hashed right: proven, whatever a listing taken before the upload showed.
    if [[ -n ${wanted[$key]:-} && $got == "$sha" ]]; then
      continue
    elif [[ -z ${rsize[$key]:-} && -n ${wanted[$key]:-} && -n $got ]]; then
      log "VERIFY HASH MISMATCH: r2:${bucket}/${prefix}/${key} (${rel}): read back sha256 ${got}, manifest ${sha}"
    elif [[ -z ${rsize[$key]:-} ]]; then
      log "VERIFY MISSING: r2:${bucket}/${prefix}/${key} (${rel})"
    elif [[ ${rsize[$key]} != "$size" ]]; then
      log "VERIFY SIZE MISMATCH: r2:${bucket}/${prefix}/${key} (${rel}): remote ${rsize[$key]} bytes, manifest ${size}"
    elif [[ -n ${rmd5[$key]} && ${rmd5[$key]} != "$md5" ]]; then
      log "VERIFY HASH MISMATCH: r2:${bucket}/${prefix}/${key} (${rel}): remote md5 ${rmd5[$key]}, manifest ${md5}"
    elif [[ -n ${etag_bad[$key]:-} ]]; then
      log "VERIFY ETAG MISMATCH: r2:${bucket}/${prefix}/${key} (${rel}): its multipart ETag in R2 is not the one its bytes give (named above)"
    elif [[ -n ${wanted[$key]:-} && -z $got ]]; then
      log "VERIFY UNREADABLE: r2:${bucket}/${prefix}/${key} (${rel}): could not be read back"
    elif [[ -n ${wanted[$key]:-} && $got != "$sha" ]]; then
      log "VERIFY HASH MISMATCH: r2:${bucket}/${prefix}/${key} (${rel}): read back sha256 ${got}, manifest ${sha}"
    else
      continue
    fi
    R2_BAD_COUNT=$((R2_BAD_COUNT + 1))
  done <"$entries"
  rm -rf "$work"
}

# r2_last_manifest BUCKET PREFIX OUT [NAMES]: copy the newest readable manifest under PREFIX to OUT and
# set R2_LAST_MANIFEST_KEY; returns 1 when there is none. (A v2 manifest is written only after
# every object it names was verified.) NAMES: the manifest names, already listed.
r2_last_manifest() {
  local bucket=$1 prefix=$2 out=$3 names name err
  R2_LAST_MANIFEST_KEY=
  if [[ -n ${4:-} ]]; then
    names=$(cat "$4")
  else
    names=$(r2_rclone lsf --files-only "r2:${bucket}/${prefix}/manifests" 2>&1) || r2_fail "listing r2:${bucket}/${prefix}/manifests" "$names"
  fi
  err=$(mktemp)
  for name in $(grep -E '^[0-9TZ-]+\.tsv$' <<<"$names" | LC_ALL=C sort -r | head -n 3); do
    if r2_rclone copyto "r2:${bucket}/${prefix}/manifests/${name}" "$out" 2>"$err" &&
      head -n 1 "$out" | grep -q '^# comfyume-manifest v' && manifest_keyed_entries "$out" >/dev/null 2>&1; then
      # shellcheck disable=SC2034  # read by check_set_size and r2_backup_tree (r2-backup.sh)
      R2_LAST_MANIFEST_KEY="${prefix}/manifests/${name}"
      rm -f "$err"
      return 0
    fi
    warn "skipping unreadable manifest r2:${bucket}/${prefix}/manifests/${name}"
  done
  rm -f "$err"
  : >"$out"
  return 1
}

# r2_plan_keys MANIFEST LAST LISTING OUT: for each distinct sha256 in MANIFEST, the key to use and
# how it is proven good in this run: "sha<TAB>key<TAB>action<TAB>size<TAB>path<TAB>next_key".
#   known    the key the last verified (v2) manifest LAST used, listed with the right size/MD5
#   readback an existing copy no verified manifest vouches for: read back before it is used
#   upload   no usable copy: send one to the first free generation (never over an existing key)
# next_key is the first free generation, used when a read-back copy turns out bad.
r2_plan_keys() {
  local manifest=$1 last=$2 listing=$3 out=$4 sha md5 size rel key gen action
  local -A rsize=() rmd5=() maxgen=() known=() seen=()
  while IFS=$'\t' read -r key size md5; do
    rsize[$key]=$size
    rmd5[$key]=$md5
    # (object_generation inline: a subshell per listed object cost ~2 ms each)
    sha=${key##*/}
    if [[ $sha != *.* ]]; then gen=1; elif [[ ${sha##*.g} =~ ^[0-9]+$ ]]; then gen=${sha##*.g}; else gen=0; fi
    sha=${sha%%.*}
    if ((gen > ${maxgen[$sha]:-0})); then maxgen[$sha]=$gen; fi
  done <"$listing"
  if head -n 1 "$last" 2>/dev/null | grep -q '^# comfyume-manifest v2'; then
    # (from a file, not a pipe: bash's read takes a pipe one byte at a time, ~150 calls a line)
    manifest_keyed_entries "$last" >"${out}.last"
    while IFS=$'\t' read -r sha md5 size rel key; do known[$sha]=$key; done <"${out}.last"
    rm -f "${out}.last"
  fi
  manifest_entries "$manifest" >"${out}.entries"
  listed_ok() { [[ ${rsize[$1]:-} == "$size" && (-z ${rmd5[$1]} || ${rmd5[$1]} == "$md5") ]]; }
  while IFS=$'\t' read -r sha md5 size rel; do
    [[ -z ${seen[$sha]:-} ]] || continue
    seen[$sha]=1
    gen=${maxgen[$sha]:-0}
    key=${known[$sha]:-}
    if [[ -n $key ]] && listed_ok "$key"; then
      action=known
      [[ ${R2_DEEP_VERIFY:-0} != 1 ]] || action=readback
    else
      [[ -z $key ]] || log "HEALING: r2 listing shows ${key} (${rel}) missing or altered (listed size ${rsize[$key]:-none}, md5 ${rmd5[$key]:-none}; expected ${size}, ${md5}); a fresh copy goes to a new key"
      key=$(object_key "$sha" "$gen")
      action=readback
      if ((gen == 0)) || [[ $key == "${known[$sha]:-}" ]] || ! listed_ok "$key"; then
        key=$(object_key "$sha" $((gen + 1)))
        action=upload
      fi
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$sha" "$key" "$action" "$size" "$rel" "$(object_key "$sha" $((gen + 1)))"
  done <"${out}.entries" >"$out"
  rm -f "${out}.entries"
  unset -f listed_ok
}

# ---- rotating read-back of reused objects ----
# A night reuses most objects (vouched for by the last verified manifest and listed with the right
# size). The listing cannot prove their bytes: R2 may alter stored bytes and keep the old ETag, and
# a multipart object's ETag holds no MD5 of the whole object. So each night also reads back a
# bounded sample of them, rotating through the set (a cursor kept with the hash state): about
# R2_SAMPLE_PERCENT % of the reused bytes, at most R2_SAMPLE_MAX_OBJECTS objects, and at least
# one object, so every object is read back within about 100 / R2_SAMPLE_PERCENT nights.
R2_SAMPLE_PERCENT=${R2_SAMPLE_PERCENT:-2}
R2_SAMPLE_MAX_OBJECTS=${R2_SAMPLE_MAX_OBJECTS:-200}

# validate_sample_options: --sample-percent is a number in [0,100].
validate_sample_options() {
  [[ $R2_SAMPLE_PERCENT =~ ^([0-9]{1,2}(\.[0-9]+)?|100)$ ]] ||
    die "--sample-percent '${R2_SAMPLE_PERCENT}' must be a number from 0 to 100 (the share of reused bytes read back each night; default 2)"
  [[ $R2_SAMPLE_MAX_OBJECTS =~ ^[0-9]+$ ]] || die "R2_SAMPLE_MAX_OBJECTS '${R2_SAMPLE_MAX_OBJECTS}' must be a whole number"
}

# r2_sample_reused PLAN CURSOR_FILE: mark, in PLAN, the next sample of "known" copies (in key order
# after the key named in CURSOR_FILE, wrapping) as "sample", and move the cursor past them.
r2_sample_reused() {
  local plan=$1 cursor_file=$2 cursor=""
  [[ $R2_SAMPLE_PERCENT != 0 && $R2_SAMPLE_PERCENT != 0.0 ]] || return 0
  if [[ -f $cursor_file ]]; then IFS= read -r cursor <"$cursor_file" || true; fi
  awk -F'\t' '$3 == "known" { print $2 "\t" $4 }' "$plan" | LC_ALL=C sort -u >"${plan}.known"
  [[ -s ${plan}.known ]] || { rm -f "${plan}.known"; return 0; }
  awk -F'\t' -v cursor="$cursor" -v pct="$R2_SAMPLE_PERCENT" -v max="$R2_SAMPLE_MAX_OBJECTS" '
    { key[NR] = $1; size[NR] = $2; total += $2; if ($1 <= cursor) start = NR }
    END {
      budget = total * pct / 100
      for (i = 0; i < NR; i++) {
        j = (start + i) % NR + 1
        if (taken > 0 && (got + size[j] > budget || taken >= max)) break
        print key[j]; got += size[j]; taken++
      }
    }' "${plan}.known" >"${plan}.sample"
  awk -F'\t' -v OFS='\t' 'FNR == NR { pick[$1] = 1; next } $3 == "known" && ($2 in pick) { $3 = "sample" } { print }' \
    "${plan}.sample" "$plan" >"${plan}.new"
  mv -f "${plan}.new" "$plan"
  if ! { mkdir -p "$(dirname "$cursor_file")" && tail -n 1 "${plan}.sample" >"${cursor_file}.tmp.$$" && mv -f "${cursor_file}.tmp.$$" "$cursor_file"; } 2>/dev/null; then
    warn "cannot write the read-back cursor ${cursor_file}: the next night samples from the start again"
  fi
  log "reading back a rotating sample of reused objects: $(wc -l <"${plan}.sample") of $(wc -l <"${plan}.known") (R2_SAMPLE_PERCENT=${R2_SAMPLE_PERCENT} % of the reused bytes, at least one object)"
  rm -f "${plan}.known" "${plan}.sample"
}

# r2_prove_candidates BUCKET PREFIX PLAN: read back every "readback" and "sample" copy of PLAN; a
# copy whose bytes are wrong is replaced, in PLAN, by an upload to a new key (the bad copy stays
# untouched, nothing is overwritten or deleted).
r2_prove_candidates() {
  local bucket=$1 prefix=$2 plan=$3 sha key action size rel next got
  local -A hashed=()
  awk -F'\t' '$3 == "readback" || $3 == "sample" { print $2 "\t" $4 }' "$plan" >"${plan}.keys"
  [[ -s ${plan}.keys ]] || { rm -f "${plan}.keys"; return 0; }
  log "reading back $(wc -l <"${plan}.keys") copy(ies) already in r2:${bucket}/${prefix}: $(grep -c $'\treadback\t' "$plan" || true) that no verified manifest vouches for, $(grep -c $'\tsample\t' "$plan" || true) reused (rotating sample)"
  r2_hash_objects "$bucket" "$prefix" "${plan}.keys" "${plan}.hashed" "It is healed: a fresh copy goes under a new key (nothing is overwritten)"
  while IFS=$'\t' read -r key got; do hashed[$key]=$got; done <"${plan}.hashed"
  while IFS=$'\t' read -r sha key action size rel next; do
    if [[ ($action == readback || $action == sample) && ${hashed[$key]:-} != "$sha" ]]; then
      log "HEALING: r2:${bucket}/${prefix}/${key} (${rel}) reads back as ${hashed[$key]:-unreadable}, expected sha256 ${sha}; uploading a fresh copy as ${next}"
      key=$next
      action=upload
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$sha" "$key" "$action" "$size" "$rel" "$next"
  done <"$plan" >"${plan}.new"
  mv -f "${plan}.new" "$plan"
  rm -f "${plan}.keys" "${plan}.hashed" "${plan}.hashed.etag"
}

