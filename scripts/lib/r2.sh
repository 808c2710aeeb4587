# shellcheck shell=bash
# R2 access: rclone's S3 backend configured from the environment, signed curl requests, multipart ETags, checked reads.
# Part of the shared library: common.sh sources it; never source it on its own.

# ---- R2 through rclone's S3 backend, configured only by environment variables ----

RCLONE_CMD=${RCLONE_CMD:-rclone}
RCLONE_RETRIES=${RCLONE_RETRIES:-3}

# r2_setup: define the rclone remote "r2:" from R2_ENDPOINT and the two keys read
# from stdin. No rclone.conf is read or written.
r2_setup() {
  [[ -z ${COMFYUME_R2_READY:-} ]] || return 0
  require_cmd "$RCLONE_CMD" jq sha256sum md5sum curl perl
  [[ -n ${R2_ENDPOINT:-} ]] || die "R2_ENDPOINT is not set: pass --r2-endpoint https://<account-id>.eu.r2.cloudflarestorage.com"
  [[ $R2_ENDPOINT =~ ^https?://[^/[:space:]]+/?$ ]] || die "R2_ENDPOINT '${R2_ENDPOINT}' is not a bare URL like https://<account-id>.eu.r2.cloudflarestorage.com"
  # Two endpoint typos seen in the old .env files; both fail silently with some clients.
  [[ $R2_ENDPOINT != *.com.eu* && $R2_ENDPOINT != *.eu.eu.* ]] || die "R2_ENDPOINT '${R2_ENDPOINT}' looks mistyped; the EU form is https://<account-id>.eu.r2.cloudflarestorage.com"
  [[ -n ${R2_ACCESS_KEY_ID:-} ]] || die "R2_ACCESS_KEY_ID missing: send it on stdin as R2_ACCESS_KEY_ID=<key>"
  [[ -n ${R2_SECRET_ACCESS_KEY:-} ]] || die "R2_SECRET_ACCESS_KEY missing: send it on stdin as R2_SECRET_ACCESS_KEY=<secret>"
  # The keys stay unexported shell variables: r2_rclone hands them to each rclone process alone, so
  # sha256sum, jq, find, curl, ... (every other child of the script) never see them.
  export -n R2_ACCESS_KEY_ID R2_SECRET_ACCESS_KEY
  R2_EXTRA_FLAGS=()
  # rclone's AWS SDK rejects AWS_CA_BUNDLE with its own HTTP transport; hand the bundle to --ca-cert instead.
  if [[ -n ${AWS_CA_BUNDLE:-} ]]; then
    R2_EXTRA_FLAGS+=(--ca-cert "$AWS_CA_BUNDLE")
    unset AWS_CA_BUNDLE
  fi
  COMFYUME_R2_READY=1
}

# r2_rclone ARGS...: the one way the scripts run rclone. The remote "r2:" (rclone's S3 backend, no
# rclone.conf) is defined by command-prefix assignments, which reach this rclone process alone and are
# never exported; bounded retries and timeouts. Buckets are created by Pulumi: a scoped token may not
# create them, and a typo must not create a new one (NO_CHECK_BUCKET).
r2_rclone() {
  RCLONE_CONFIG=/dev/null RCLONE_CONFIG_R2_TYPE=s3 RCLONE_CONFIG_R2_PROVIDER=Cloudflare RCLONE_CONFIG_R2_REGION=auto \
    RCLONE_CONFIG_R2_ENDPOINT=$R2_ENDPOINT RCLONE_CONFIG_R2_NO_CHECK_BUCKET=true \
    RCLONE_CONFIG_R2_ACCESS_KEY_ID=$R2_ACCESS_KEY_ID RCLONE_CONFIG_R2_SECRET_ACCESS_KEY=$R2_SECRET_ACCESS_KEY \
    "$RCLONE_CMD" --retries "$RCLONE_RETRIES" --low-level-retries "$RCLONE_RETRIES" \
    --contimeout 10s --timeout 120s "${R2_EXTRA_FLAGS[@]}" "$@"
}

# r2_check_bucket BUCKET: fail clearly when the endpoint or the bucket cannot be listed.
r2_check_bucket() {
  local out
  if ! out=$(r2_rclone lsf --max-depth 1 "r2:$1" 2>&1 >/dev/null); then
    die "cannot reach R2 bucket '$1' at ${R2_ENDPOINT}: $(scrub "$(tail -n 3 <<<"$out")"). Check the endpoint, the bucket name and the keys"
  fi
}


# curl's words for an endpoint it could not reach or that went away mid-transfer (_r2_get).
R2_CURL_UNREACHABLE="Failed to connect|Couldn't connect|Could not resolve host|Connection timed out|transfer closed with|Recv failure|Empty reply from server"
# curl's words for an R2 that cannot be reached at all. (A read-back answer cut short, "transfer
# closed with", is one object unreadable while R2 answers: it is counted bad and healed, not
# reported as R2 unreachable: readback-short-object.test.ts.)
# shellcheck disable=SC2034  # read by r2_hash_objects (r2-verify.sh)
R2_CURL_NO_CONNECT="Failed to connect|Couldn't connect|Could not resolve host|Connection timed out"

# r2_fail WHAT ERROR_TEXT: die naming the cause; an R2 that cannot be reached says so and
# how to go on (nothing in R2 was deleted or overwritten; a re-run sends only what is missing).
r2_fail() {
  local what=$1 err
  err=$(scrub "$(tail -n 3 <<<"$2" | tr '\n' ' ')")
  if grep -qiE "connection refused|no such host|i/o timeout|dial tcp|connection reset|network is unreachable|TLS handshake timeout|context deadline exceeded|unexpected EOF|broken pipe|$R2_CURL_UNREACHABLE" <<<"$2"; then
    die "R2 unreachable at ${R2_ENDPOINT} while ${what} (${err}); nothing in R2 was deleted or overwritten. Check the network and --r2-endpoint, then re-run: objects already sent are kept and not sent again"
  fi
  die "R2 error while ${what}: ${err}"
}

# ---- multipart ETags: computed locally, compared with R2's (backup verification, restore, seed-flat) ----
# A multipart object's ETag is md5(the parts' binary MD5s)-<parts>, no MD5 of the whole object, so
# a listing cannot check it. Where an object of at least R2_MULTIPART_MIN_BYTES (5 MiB, S3's
# smallest part) is read anyway (read-back, restore), its ETag is computed over the bytes read, in
# the same pass as their SHA-256, and compared with the one R2 reports. The SHA-256 against the
# manifest stays the proof that the bytes are right; the ETag compare catches an object whose R2
# record is not its bytes (replaced, re-assembled, or damaged behind a stale ETag).
R2_MULTIPART_MIN_BYTES=5242880

# multipart_etag PART_SIZE: the ETag S3 gives the bytes on stdin uploaded in parts of PART_SIZE
# bytes: md5(concatenated binary MD5 of each part)-<parts>. One perl process (Digest::MD5) for all
# parts where it is there; else split runs md5sum once per part (coreutils only), which cost
# ~0.7 CPU-s per GB more in process starts and pipes (docs/backups.md).
multipart_etag() {
  if md5_parts_perl; then
    perl -MDigest::MD5 -e "$COMFYUME_MD5_PARTS_PERL" "$1" /dev/null 0
    return
  fi
  local sums
  sums=$(split -b "$1" --filter='md5sum' | awk '{ print $1 }') || return 1
  [[ -n $sums ]] || return 1
  printf '%s-%s\n' "$(perl -ne 'print pack("H32", $1) if /^([0-9a-f]{32})$/' <<<"$sums" | md5sum | cut -d' ' -f1)" "$(wc -l <<<"$sums")"
}

# md5_parts_perl: true when perl has Digest::MD5 (Debian's libperl, on every stock Debian and
# Ubuntu image; not in perl-base alone). COMFYUME_ETAG_TOOL=split forces the coreutils path.
md5_parts_perl() {
  if [[ -z ${COMFYUME_MD5_PARTS_OK:-} ]]; then
    COMFYUME_MD5_PARTS_OK=no
    if [[ ${COMFYUME_ETAG_TOOL:-perl} == perl ]] && perl -MDigest::MD5 -e 1 2>/dev/null; then COMFYUME_MD5_PARTS_OK=yes; fi
  fi
  [[ $COMFYUME_MD5_PARTS_OK == yes ]]
}

# The one pass over a stream for the multipart ETag: perl -e "$COMFYUME_MD5_PARTS_PERL" PART STAGED
# PASS reads stdin, writes every byte to STAGED (unless /dev/null) and, with PASS=1, to stdout (the
# SHA-256 hasher), and prints "<etag>-<parts>" last: on fd 3 with PASS=1, else on stdout. Nothing
# printed and exit 1 for empty input. A write that fails (disk full, hasher gone) fails it.
# shellcheck disable=SC2016  # perl code, expanded by perl
COMFYUME_MD5_PARTS_PERL='
  use strict;
  my ($part, $staged, $pass) = @ARGV;
  my ($out, $etag_fh, $buf);
  if ($staged ne "/dev/null") { open($out, ">", $staged) or die "cannot write $staged: $!\n"; }
  if ($pass) { open($etag_fh, ">&=", 3) or die "fd 3: $!\n"; } else { $etag_fh = \*STDOUT; }
  sub put { my ($fh, $what) = @_; my $off = 0;
    while ($off < length $_[2]) { my $w = syswrite($fh, $_[2], length($_[2]) - $off, $off);
      die "write to $what failed: $!\n" unless defined $w; $off += $w; } }
  my ($ctx, $left, $n, $sums) = (Digest::MD5->new, $part, 0, "");
  while (1) {
    my $r = sysread(STDIN, $buf, 1 << 20);
    die "read failed: $!\n" unless defined $r;
    last if $r == 0;
    put($out, $staged, $buf) if $out;
    put(\*STDOUT, "the hasher", $buf) if $pass;
    my $off = 0;
    while ($off < $r) {
      my $take = $r - $off < $left ? $r - $off : $left;
      $ctx->add($off == 0 && $take == $r ? $buf : substr($buf, $off, $take));
      $off += $take; $left -= $take;
      if ($left == 0) { $sums .= $ctx->digest; $n++; $left = $part; }
    }
  }
  if ($left < $part) { $sums .= $ctx->digest; $n++; }
  if ($out) { close($out) or die "cannot write $staged: $!\n"; }
  exit 1 unless $n;
  print $etag_fh Digest::MD5::md5_hex($sums), "-$n\n";
'

# r2_head_etag BUCKET KEY SIZE: R2's ETag of an object (R2_HEAD_ETAG, no quotes; empty when the HEAD
# failed) and, for a multipart one, its part size (R2_HEAD_PART: part 1's length from HEAD
# ?partNumber=1, else the first whole-MiB size that gives the ETag's part count, rclone's 5 MiB
# first); R2_HEAD_PART is 0 for a single-part object. One request (two if ?partNumber= is refused).
r2_head_etag() {
  local bucket=$1 key=$2 size=$3 url head code len
  url=$(_r2_object_url "$bucket" "$key")
  R2_HEAD_ETAG='' R2_HEAD_PART=0 R2_HEAD_PART_HOW=''
  head=$(_r2_curl -I -o /dev/null -D - "${url}?partNumber=1" 2>/dev/null) || head=''
  code=$(awk '/^HTTP\// { c = $2 } END { print c }' <<<"${head//$'\r'/}")
  if [[ $code != 200 && $code != 206 ]]; then
    head=$(_r2_curl -I -o /dev/null -D - "$url" 2>/dev/null) || return 0
    code=''
  fi
  R2_HEAD_ETAG=$(awk 'BEGIN { IGNORECASE = 1 } tolower($1) == "etag:" { e = $2 } END { gsub(/"/, "", e); print e }' <<<"${head//$'\r'/}")
  [[ $R2_HEAD_ETAG == *-* ]] || return 0
  len=$(awk 'BEGIN { IGNORECASE = 1 } tolower($1) == "content-length:" { l = $2 + 0 } END { print l + 0 }' <<<"${head//$'\r'/}")
  if [[ $code == 206 ]] && ((len > 0)); then
    R2_HEAD_PART=$len R2_HEAD_PART_HOW="from the server"
  else
    [[ ${COMFYUME_R2_PART_SIZE:-1} =~ ^[1-9][0-9]*$ ]] || die "COMFYUME_R2_PART_SIZE='${COMFYUME_R2_PART_SIZE}' is not a part size in bytes; fix or unset it"
    R2_HEAD_PART=${COMFYUME_R2_PART_SIZE:-$(flat_part_candidates "$size" "${R2_HEAD_ETAG##*-}" | head -n 1)}
    R2_HEAD_PART=${R2_HEAD_PART:-0}
    # shellcheck disable=SC2034  # read by r2_read_checked
    R2_HEAD_PART_HOW="inferred from the part count: the server gives no part size; set COMFYUME_R2_PART_SIZE=<bytes> if the object was uploaded with another"
  fi
}

# r2_stream_hash SRC PART [STAGED]: stream the object SRC (r2:bucket/key) once through its SHA-256
# (sha256_stream) and, with PART > 0, its multipart ETag (PART bytes a part), also into STAGED when
# given. Sets STREAM_SHA256 and STREAM_ETAG; returns 1 when the download failed (its error in
# STREAM_ERR's file, appended). The bytes come by curl (_r2_get) and pass two pipes: curl -> one
# perl (writes STAGED, the part MD5s) -> openssl; rclone cat and split's md5sum per part cost
# ~2x the CPU per GB here (docs/backups.md, "The morning restore at disk speed").
r2_stream_hash() {
  local src=${1#r2:} part=$2 staged=${3:-/dev/null} out line
  STREAM_SHA256='' STREAM_ETAG=''
  if ((part > 0)) && md5_parts_perl; then
    out=$({ _r2_get "${src%%/*}" "${src#*/}" 2>>"${STREAM_ERR:-/dev/null}" | perl -MDigest::MD5 -e "$COMFYUME_MD5_PARTS_PERL" "$part" "$staged" 1 | sha256_stream; } 3>&1) || return 1
  elif ((part > 0)); then
    out=$({ _r2_get "${src%%/*}" "${src#*/}" 2>>"${STREAM_ERR:-/dev/null}" | tee -- "$staged" >(multipart_etag "$part" >&3) | sha256_stream; } 3>&1) || return 1
  else
    out=$({ _r2_get "${src%%/*}" "${src#*/}" 2>>"${STREAM_ERR:-/dev/null}" | tee -- "$staged" | sha256_stream; } 3>&1) || return 1
  fi
  while read -r line; do
    line=${line%% *}
    if [[ $line =~ ^[0-9a-f]{64}$ ]]; then STREAM_SHA256=$line; elif [[ $line =~ ^[0-9a-f]{32}-[0-9]+$ ]]; then STREAM_ETAG=$line; fi
  done <<<"$out"
  [[ -n $STREAM_SHA256 ]] && { ((part == 0)) || [[ -n $STREAM_ETAG ]]; }
}

# _r2_object_url BUCKET KEY: the object's URL at R2_ENDPOINT (the key percent-encoded, slashes kept).
_r2_object_url() { printf '%s/%s/%s' "${R2_ENDPOINT%/}" "$1" "$(_uri_encode "$2" | sed 's/%2F/\//g')"; }

# _r2_get BUCKET KEY: the object's bytes on stdout (one signed GET by curl; the keys reach curl on
# stdin: _r2_curl). No overall time limit (a 25 GB model takes minutes): a transfer that moves
# under 1 KiB/s for 120 s is aborted, like rclone's --timeout 120s. No retry by curl: its retry
# would append a second copy to the stream; a failed stream fails the object (named by the
# caller) and a re-run fetches it again. HTTP errors fail it (curl: (22) ... error: 403).
_r2_get() {
  local url
  url=$(_r2_object_url "$1" "$2")
  url=${url//\\/\\\\}
  # (the URL goes in curl's config on stdin too, as in _r2_get_many: one way for every download)
  _r2_curl --more-config <(printf 'url = "%s"\n' "${url//\"/\\\"}") --fail --retry 0 --max-time 0 --speed-limit 1024 --speed-time 120 -o -
}

# r2_read_checked BUCKET KEY SIZE FIX [STAGED]: read the object once (r2_stream_hash), its multipart
# ETag computed and compared with R2's. Sets STREAM_SHA256. Returns 1 when it could not be read, 2
# on an ETag mismatch (logged: the object, both ETags, the part size, and FIX).
r2_read_checked() {
  local bucket=$1 key=$2 size=$3 fix=$4 staged=${5:-}
  # (below S3's smallest part no upload of ours is multipart: no HEAD)
  R2_HEAD_PART=0 R2_HEAD_ETAG='' R2_HEAD_PART_HOW=''
  if ((size >= R2_MULTIPART_MIN_BYTES)); then r2_head_etag "$bucket" "$key" "$size"; fi
  r2_stream_hash "r2:${bucket}/${key}" "$R2_HEAD_PART" ${staged:+"$staged"} || return 1
  ((R2_HEAD_PART > 0)) || return 0
  if [[ $STREAM_ETAG != "$R2_HEAD_ETAG" ]]; then
    log "ETAG MISMATCH: r2:${bucket}/${key}: R2 reports ${R2_HEAD_ETAG}, its bytes give ${STREAM_ETAG} (multipart ETag computed locally, part size ${R2_HEAD_PART} ${R2_HEAD_PART_HOW}; sha256 ${STREAM_SHA256}): R2's record of this object is not its bytes; not trusted. ${fix}"
    return 2
  fi
  log "multipart ETag of r2:${bucket}/${key} verified: ${R2_HEAD_ETAG}, part size ${R2_HEAD_PART}${R2_HEAD_PART_HOW:+ (${R2_HEAD_PART_HOW%%:*})}"
}

# _r2_curl ARGS...: one signed S3 request to R2_ENDPOINT (r2_setup first); bounded retries and timeouts.
_r2_curl() {
  local ca=() i more=''
  # --more-config FILE (first): more curl config after the keys (_r2_get_many: a url and output per object).
  if [[ ${1:-} == --more-config ]]; then more=$2; shift 2; fi
  for ((i = 0; i < ${#R2_EXTRA_FLAGS[@]}; i++)); do
    [[ ${R2_EXTRA_FLAGS[i]} != --ca-cert ]] || ca=(--cacert "${R2_EXTRA_FLAGS[i + 1]}")
  done
  local user="${R2_ACCESS_KEY_ID}:${R2_SECRET_ACCESS_KEY}"
  user=${user//\\/\\\\}
  { printf 'user = "%s"\n' "${user//\"/\\\"}"; if [[ -n $more ]]; then cat -- "$more"; fi; } |
    curl -K - -sS --aws-sigv4 "aws:amz:auto:s3" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
      --retry "$RCLONE_RETRIES" --connect-timeout 10 --max-time 120 "${ca[@]}" "$@"
}

# _uri_encode TEXT: TEXT percent-encoded as S3's signature expects (all but A-Za-z0-9-._~).
_uri_encode() { perl -e 'my $s = shift; $s =~ s/([^A-Za-z0-9\-._~])/sprintf("%%%02X", ord($1))/ge; print $s' "$1"; }

# _s3_error_text FILE: "Code: Message" of an S3 error document (nothing when FILE holds none).
_s3_error_text() {
  perl -0777 -ne 'print "$1: $2" if /<Code>([^<]*)<\/Code>.*?<Message>([^<]*)<\/Message>/s' "$1" 2>/dev/null || true
}

# r2_part_size BUCKET KEY: the part size a multipart object was uploaded with (the length of part 1,
# from HeadObject ?partNumber=1); nothing printed when the server does not answer part requests.
r2_part_size() {
  local head
  head=$(_r2_curl -I -o /dev/null -D - "${R2_ENDPOINT%/}/$1/$(_uri_encode "$2" | sed 's/%2F/\//g')?partNumber=1" 2>/dev/null) || return 0
  awk 'BEGIN { IGNORECASE = 1 } /^HTTP\// { code = $2 } tolower($1) == "content-length:" { len = $2 + 0 }
    END { if (code == 206 && len > 0) print len }' <<<"${head//$'\r'/}"
}

