# shellcheck shell=bash
# Flat buckets: the workshop's own R2 layout (plain keys, no manifests; seed-flat.sh).
# Part of the shared library: common.sh sources it; never source it on its own.

# ---- flat buckets (the workshop's own layout: plain keys, no manifests; seed-flat.sh) ----
# The listing's ETag is what a flat object is checked against: rclone's listing shows no ETag for a
# multipart object, so the listing and the part-size probe are plain S3 requests signed by curl
# (--aws-sigv4). The keys reach curl on stdin (-K -), never on its command line or in its environment.

# r2_flat_list BUCKET PREFIX OUT: "key<TAB>size<TAB>etag<TAB>last-modified" of every object under
# PREFIX (ListObjectsV2, 1000 keys a page), sorted by key; the ETag without quotes. Dies naming the
# bucket and the cause when the listing fails; a key holding a tab or a newline is refused.
r2_flat_list() {
  local bucket=$1 prefix=$2 out=$3 token='' page query base=${R2_ENDPOINT%/}
  require_cmd curl perl
  page=$(mktemp)
  : >"${out}.unsorted"
  while :; do
    # Query parameters in the canonical (sorted) order, so curl's signature matches the server's.
    query="list-type=2"
    [[ -z $token ]] || query="continuation-token=$(_uri_encode "$token")&${query}"
    [[ -z $prefix ]] || query="${query}&prefix=$(_uri_encode "$prefix")"
    if ! _r2_curl --fail-with-body -o "$page" "${base}/${bucket}?${query}" 2>"${page}.err"; then
      die "cannot list r2:${bucket}/${prefix} at ${R2_ENDPOINT}: $(scrub "$(tail -n 1 "${page}.err") $(_s3_error_text "$page")"). Check the endpoint, the bucket name and the keys (the token needs read access to the bucket)"
    fi
    token=$(FLAT_OUT="${out}.unsorted" perl -0777 -ne '
      sub dec { my $s = shift; $s =~ s/&#(\d+);/chr($1)/ge; $s =~ s/&#x([0-9a-fA-F]+);/chr(hex $1)/ge;
        $s =~ s/&quot;/"/g; $s =~ s/&apos;/\x27/g; $s =~ s/&lt;/</g; $s =~ s/&gt;/>/g; $s =~ s/&amp;/&/g; return $s }
      open(my $o, ">>", $ENV{FLAT_OUT}) or die "cannot write $ENV{FLAT_OUT}: $!";
      while (/<Contents>(.*?)<\/Contents>/gs) {
        my $c = $1; my %f;
        for my $t (qw(Key Size ETag LastModified)) { $f{$t} = $c =~ /<$t>(.*?)<\/$t>/s ? dec($1) : "" }
        $f{ETag} =~ s/^"|"$//g;
        die "FLAT-KEY-REFUSED: a key holds a tab or a newline: $f{Key}\n" if $f{Key} =~ /[\t\n\r]/;
        print $o join("\t", @f{qw(Key Size ETag LastModified)}), "\n";
      }
      print dec($1) if /<IsTruncated>true<\/IsTruncated>/ && /<NextContinuationToken>(.*?)<\/NextContinuationToken>/s;
    ' "$page" 2>"${page}.err") || die "listing of r2:${bucket}/${prefix} refused: $(cat "${page}.err")"
    [[ -n $token ]] || break
  done
  LC_ALL=C sort -t $'\t' -k1,1 "${out}.unsorted" >"$out"
  rm -f "$page" "${page}.err" "${out}.unsorted"
}

# flat_hash_etag FILE PART_SIZE: set FLAT_SHA256, FLAT_MD5 and FLAT_ETAG of FILE. PART_SIZE 0: the
# ETag is the MD5 (hash_file: one read for both). Otherwise the multipart ETag S3 gives an object
# uploaded in parts of PART_SIZE bytes: md5(concatenated binary MD5 of each part)-<parts>; the SHA-256
# and the whole MD5 (the backups' hash state needs both) are read beside it.
flat_hash_etag() {
  local file=$1 part=$2 shaf md5f readers=()
  if ((part == 0)); then
    hash_file "$file"
    # shellcheck disable=SC2034  # results read by the caller
    FLAT_SHA256=$HASHED_SHA256 FLAT_MD5=$HASHED_MD5 FLAT_ETAG=$HASHED_MD5
    return 0
  fi
  shaf=$(mktemp)
  md5f=$(mktemp)
  # Three readers of the same file at once share the page cache: the bytes come from disk once.
  sha256sum <"$file" >"$shaf" &
  readers+=($!)
  md5sum <"$file" >"$md5f" &
  readers+=($!)
  # shellcheck disable=SC2034  # (the one multipart ETag computation, shared with the restore)
  FLAT_ETAG=$(multipart_etag "$part" <"$file")
  if ! wait "${readers[0]}" || ! wait "${readers[1]}"; then
    rm -f "$shaf" "$md5f"
    return 1
  fi
  # shellcheck disable=SC2034  # results read by the caller
  FLAT_SHA256=$(cut -d' ' -f1 "$shaf") FLAT_MD5=$(cut -d' ' -f1 "$md5f")
  rm -f "$shaf" "$md5f"
}

# flat_latest_dated LISTING [HOURLY]: from r2_flat_list output, the newest object of each name among
# "<prefix><name>-<YYYY-MM-DD>.tar.gz" (HOURLY=1: "<name>-<YYYY-MM-DD-HH>.tar.gz"), dates compared as
# dates (2026-9-30 is older than 2026-10-01), the later Last-Modified breaking a tie. Prints
# "name<TAB>key<TAB>size<TAB>etag<TAB>last-modified" per name, sorted by name; keys of the other
# form and dates that do not exist are logged and left out.
flat_latest_dated() {
  local listing=$1 hourly=${2:-0} key size etag lm base name y m d h stamp re
  re='^(.+)-([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})(-([0-9]{1,2}))?\.tar\.gz$'
  local -A best=() row=()
  while IFS=$'\t' read -r key size etag lm; do
    base=${key##*/}
    [[ $base =~ $re ]] || continue
    name=${BASH_REMATCH[1]} y=${BASH_REMATCH[2]} m=$((10#${BASH_REMATCH[3]})) d=$((10#${BASH_REMATCH[4]})) h=${BASH_REMATCH[6]}
    if [[ -n $h && $hourly != 1 ]] || [[ -z $h && $hourly == 1 ]]; then
      log "skipped r2 key ${key}: not named <name>-<YYYY-MM-DD$([[ $hourly == 1 ]] && printf -- -HH)>.tar.gz"
      continue
    fi
    h=$((10#${h:-0}))
    if ((m < 1 || m > 12 || d < 1 || h > 23)) || ! date -u -d "$(printf '%04d-%02d-%02d' "$y" "$m" "$d")" >/dev/null 2>&1; then
      log "skipped r2 key ${key}: ${y}-${m}-${d} is not a date"
      continue
    fi
    stamp=$(printf '%04d%02d%02d%02d\t%s' "$y" "$m" "$d" "$h" "$lm")
    if [[ -z ${best[$name]:-} ]] || [[ $stamp > ${best[$name]} ]]; then
      best[$name]=$stamp row[$name]="${name}	${key}	${size}	${etag}	${lm}"
    fi
  done <"$listing"
  for name in "${!row[@]}"; do printf '%s\n' "${row[$name]}"; done | LC_ALL=C sort
}

# flat_verify BUCKET KEY FILE SIZE ETAG: the copied FILE against the listing (size, then the ETag
# computed locally); sets FLAT_SHA256. Logs the bad object and returns 1.
flat_verify() {
  local bucket=$1 key=$2 file=$3 size=$4 etag=$5 got part=0 back
  got=$(stat -c %s -- "$file")
  if [[ $got != "$size" ]]; then
    log "SIZE MISMATCH: r2:${bucket}/${key} copied as ${got} bytes, the listing says ${size}; not installed. Re-run; if it persists, re-upload ${key} to the bucket"
    return 1
  fi
  if [[ $etag == *-* ]]; then
    part=$(r2_part_size "$bucket" "$key")
    if [[ -z $part ]]; then
      flat_verify_inferred "$bucket" "$key" "$file" "$size" "$etag"
      return
    fi
  fi
  flat_hash_etag "$file" "$part"
  if [[ $FLAT_ETAG != "$etag" ]]; then
    log "ETAG MISMATCH: r2:${bucket}/${key} copied with $([[ $part == 0 ]] && printf 'MD5' || printf 'multipart ETag (part size %s)' "$part") ${FLAT_ETAG}, the listing says ${etag}: the object in R2 is damaged (or was replaced during the copy); not installed. Re-upload ${key} to the bucket from a good copy, then re-run"
    return 1
  fi
  [[ $part == 0 ]] || log "multipart ETag of r2:${bucket}/${key} verified: ${etag}, part size ${part}"
}

# flat_part_candidates SIZE PARTS: the part sizes, whole MiB, that cut SIZE bytes into PARTS parts
# ((PARTS-1)*p < SIZE <= PARTS*p), the common upload tools' first (rclone 5 MiB, aws-cli 8 MiB, 16,
# 64 MiB), at most four.
flat_part_candidates() {
  local size=$1 nparts=$2 mib=1048576 m lo n=0 common=" 5 8 16 64 " out=() rest=()
  lo=$(((size + nparts * mib - 1) / (nparts * mib)))
  for ((m = lo; nparts == 1 || (nparts - 1) * m * mib < size; m++)); do
    if [[ $common == *" $m "* ]]; then out+=($((m * mib))); else rest+=($((m * mib))); fi
    n=$((n + 1))
    ((n < 64 && nparts > 1)) || break
  done
  out+=("${rest[@]}")
  printf '%s\n' "${out[@]:0:4}"
}

# flat_verify_inferred BUCKET KEY FILE SIZE ETAG: a multipart ETag when the server gives no part size
# (R2 may not answer ?partNumber=): tried with each whole-MiB part size that fits (one read each); none
# fitting the ETag is a damaged object. Only when no whole-MiB size can give that part count is the
# object read back instead (a second download hashed and compared: it proves R2 serves the copy's bytes,
# not that they are the uploader's; the log says so).
flat_verify_inferred() {
  local bucket=$1 key=$2 file=$3 size=$4 etag=$5 p tried=() back
  while IFS= read -r p; do
    [[ -n $p ]] || continue
    flat_hash_etag "$file" "$p"
    if [[ $FLAT_ETAG == "$etag" ]]; then
      log "multipart ETag of r2:${bucket}/${key} verified: ${etag}, part size ${p} (inferred: the server gives no part size)"
      return 0
    fi
    tried+=("$p")
  done < <(flat_part_candidates "$size" "${etag##*-}")
  if ((${#tried[@]})); then
    log "ETAG MISMATCH: r2:${bucket}/${key} matches its multipart ETag ${etag} with none of the part sizes that fit (tried part sizes ${tried[*]}): the object in R2 is damaged, or was uploaded with an unusual part size; not installed. Re-upload ${key} to the bucket from a good copy, then re-run"
    return 1
  fi
  flat_hash_etag "$file" 0
  back=$(r2_rclone cat "r2:${bucket}/${key}" | sha256sum) || back=unreadable
  if [[ ${back%% *} != "$FLAT_SHA256" ]]; then
    log "READ-BACK MISMATCH: r2:${bucket}/${key} (multipart ETag ${etag}) read back with sha256 ${back%% *}, the copy has ${FLAT_SHA256}; not installed. Re-run; if it persists, re-upload ${key} to the bucket"
    return 1
  fi
  warn "r2:${bucket}/${key}: multipart ETag ${etag} cannot be recomputed (no part size from the server, none fits); read back instead (sha256 ${FLAT_SHA256}): this proves R2 serves these bytes, not that they are the uploader's"
}

