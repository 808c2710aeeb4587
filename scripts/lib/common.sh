# shellcheck shell=bash
# Shared library for every comfyume-infra shell script: logging, step timing,
# retries, locks and a `die` that names the failing step.
# Source it; it does not change shell options of the caller beyond strict mode,
# and it installs ERR and EXIT traps (use on_exit to add exit work).

set -euo pipefail

COMFYUME_SCRIPT_NAME=${COMFYUME_SCRIPT_NAME:-$(basename "${0:-comfyume}")}
COMFYUME_CURRENT_STEP=${COMFYUME_CURRENT_STEP:-startup}
# Summary rows "step<TAB>seconds<TAB>result", printed by step_summary.
COMFYUME_STEP_ROWS=()

_ts() { date -u +%Y-%m-%dT%H:%M:%SZ; }

# Log lines go to stderr, and also to COMFYUME_LOG_FILE when a script sets one (log_to_file).
# The file is written first: when stderr is gone (SSH connection dropped), the file still has it.
log() {
  local line
  line="$(_ts) [${COMFYUME_SCRIPT_NAME}] $*"
  if [[ -n ${COMFYUME_LOG_FILE:-} ]]; then printf '%s\n' "$line" >>"$COMFYUME_LOG_FILE" || true; fi
  printf '%s\n' "$line" >&2 || true
}
warn() { log "WARN: $*"; }

# die MESSAGE: exit non-zero, naming the step that failed.
die() {
  COMFYUME_DIE_MESSAGE="$*"
  log "FAILED in step '${COMFYUME_CURRENT_STEP}': $*"
  exit 1
}

_on_err() {
  local rc=$?
  log "FAILED in step '${COMFYUME_CURRENT_STEP}' (exit ${rc}, line ${BASH_LINENO[0]:-?})"
  exit "$rc"
}
trap _on_err ERR

# step NAME CMD...: run CMD as a named, timed step; logs start, end and duration.
# CMD runs with errexit still active (not behind `||`, which would switch it off
# inside functions); a failure is recorded and summarised by the EXIT trap.
# CMD may set COMFYUME_STEP_RESULT (e.g. "changed"/"unchanged") for the summary.
step() {
  local name=$1
  shift
  local previous=$COMFYUME_CURRENT_STEP end
  COMFYUME_CURRENT_STEP=$name
  COMFYUME_STEP_START=$(date +%s)
  COMFYUME_STEP_RESULT=ok
  COMFYUME_IN_STEP=1
  log "step ${name}: start"
  "$@"
  COMFYUME_IN_STEP=
  end=$(date +%s)
  COMFYUME_STEP_ROWS+=("${name}	$((end - COMFYUME_STEP_START))	${COMFYUME_STEP_RESULT}")
  log "step ${name}: done in $((end - COMFYUME_STEP_START))s (${COMFYUME_STEP_RESULT})"
  COMFYUME_CURRENT_STEP=$previous
}

# on_exit CMD...: run CMD when the script exits (after failure accounting).
COMFYUME_EXIT_HOOKS=()
on_exit() { COMFYUME_EXIT_HOOKS+=("$*"); }

_on_exit() {
  local rc=$? hook
  if ((rc != 0)) && [[ -n ${COMFYUME_IN_STEP:-} ]]; then
    COMFYUME_IN_STEP=
    local took=$(($(date +%s) - ${COMFYUME_STEP_START:-$(date +%s)}))
    COMFYUME_STEP_ROWS+=("${COMFYUME_CURRENT_STEP}	${took}	FAILED")
    log "step ${COMFYUME_CURRENT_STEP}: FAILED after ${took}s (exit ${rc})"
    step_summary
  fi
  for hook in "${COMFYUME_EXIT_HOOKS[@]}"; do
    COMFYUME_EXIT_CODE=$rc eval "$hook" || true
  done
  exit "$rc"
}
trap _on_exit EXIT

# A dropped SSH connection shows up as SIGHUP, or as SIGPIPE on the next write to stderr;
# either way: log it, run the exit hooks (status file, cleanup) and exit non-zero.
_on_signal() {
  trap '' PIPE
  log "interrupted by SIG$1 (SSH connection dropped or stopped by an operator?)"
  exit "$2"
}
trap '_on_signal HUP 129' HUP
trap '_on_signal INT 130' INT
trap '_on_signal TERM 143' TERM
trap '_on_signal PIPE 141' PIPE

# step_summary: a table of every step run so far.
step_summary() {
  ((${#COMFYUME_STEP_ROWS[@]} > 0)) || return 0
  {
    printf '%-32s %8s  %s\n' STEP SECONDS RESULT
    local row
    for row in "${COMFYUME_STEP_ROWS[@]}"; do
      IFS=$'\t' read -r n s r <<<"$row"
      printf '%-32s %8s  %s\n' "$n" "$s" "$r"
    done
  } | if [[ -n ${COMFYUME_LOG_FILE:-} ]]; then tee -a "$COMFYUME_LOG_FILE" >&2; else cat >&2; fi || true
  # (|| true: with stderr gone, the table still reaches the log file and the exit hooks still run)
}

# retry ATTEMPTS DELAY CMD...: run CMD until it succeeds, doubling DELAY (capped at 60s).
retry() {
  local attempts=$1 delay=$2 n=1
  shift 2
  until "$@"; do
    if ((n >= attempts)); then
      log "giving up after ${n} attempts: $*"
      return 1
    fi
    log "attempt ${n}/${attempts} failed; retrying in ${delay}s: $1"
    sleep "$delay"
    n=$((n + 1))
    delay=$((delay * 2 > 60 ? 60 : delay * 2))
  done
}

# require_cmd NAME...: fail with a clear message when a tool is missing.
require_cmd() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || die "required command '${c}' not found on PATH"
  done
}

# ---------------------------------------------------------------------------
# Host-script helpers (scripts/host/*.sh). Everything below is opt-in: nothing
# runs at source time, so scripts/setup/*.sh behave exactly as before.
# ---------------------------------------------------------------------------

# Per-step result shown in the summary ("ok" unless the step sets it, e.g. to
# "changed" or "unchanged"); step() resets it before each step.
COMFYUME_STEP_RESULT=ok

# print_help FILE: the comment block at the top of FILE (after the shebang).
print_help() {
  awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$1"
}

# need_value FLAG VALUE: flags that take a value must get one.
need_value() {
  [[ $# -ge 2 && -n $2 && $2 != --* ]] || die "option $1 needs a value (see --help)"
}

# read_secrets PATTERN...: read KEY=value lines from stdin into shell variables
# (not exported). Only names matching a PATTERN (glob, e.g. ENV_*) are accepted;
# values are never logged. Secrets come on stdin so they never appear in argv,
# in the remote command's environment, or in shell history.
read_secrets() {
  local line key value pattern matched
  COMFYUME_SECRET_VALUES=()
  COMFYUME_SECRET_NAMES=()
  if [[ -t 0 ]]; then
    die "secrets are read from stdin as KEY=value lines; pipe them in (e.g. printf 'R2_ACCESS_KEY_ID=...\n' | $COMFYUME_SCRIPT_NAME ...)"
  fi
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line%$'\r'}
    [[ -z $line || $line == \#* ]] && continue
    [[ $line == *=* ]] || die "a stdin line is not KEY=value (value not shown); expected names: $*"
    key=${line%%=*}
    value=${line#*=}
    [[ $key =~ ^[A-Z_][A-Z0-9_]*$ ]] || die "invalid secret name on stdin (must be UPPER_CASE); expected names: $*"
    matched=false
    for pattern in "$@"; do
      # shellcheck disable=SC2053  # the pattern is a glob on purpose
      if [[ $key == $pattern ]]; then matched=true; fi
    done
    if [[ $matched == true ]]; then
      printf -v "$key" '%s' "$value"
      COMFYUME_SECRET_NAMES+=("$key")
      [[ -n $value ]] && COMFYUME_SECRET_VALUES+=("$value")
    else
      warn "ignoring unexpected stdin key ${key} (expected: $*)"
    fi
  done
}

# scrub TEXT: TEXT with every secret read by read_secrets replaced by ***.
scrub() {
  local text=$1 s
  for s in "${COMFYUME_SECRET_VALUES[@]}"; do
    text=${text//"$s"/***}
  done
  printf '%s' "$text"
}
COMFYUME_SECRET_VALUES=()
COMFYUME_SECRET_NAMES=()

# log_to_file FILE: append every log line (and the step summary) to FILE as well.
log_to_file() {
  mkdir -p "$(dirname "$1")" || die "cannot create the log directory for $1"
  : >>"$1" || die "cannot write the log file $1"
  COMFYUME_LOG_FILE=$1
}

# free_mb PATH: free space of the filesystem holding PATH, in MiB.
free_mb() {
  df -Pk -- "$1" | awk 'NR == 2 { print int($4 / 1024) }'
}

# require_free_mb PATH MIN_MB WHAT: die (visibly) when PATH's filesystem has less than MIN_MB free.
require_free_mb() {
  local path=$1 min=$2 what=$3 free
  free=$(free_mb "$path") || die "cannot read free space of ${path}"
  if ((free < min)); then
    die "low disk space on ${path}: ${free} MiB free, ${min} MiB needed for ${what}; free space there or lower the threshold (MIN_FREE_MB)"
  fi
  log "disk: ${free} MiB free on ${path} (need ${min} MiB for ${what})"
}

# write_kv_file FILE KEY=VALUE...: atomically replace FILE with KEY=VALUE lines.
write_kv_file() {
  local file=$1 tmp
  shift
  mkdir -p "$(dirname "$file")"
  tmp=$(mktemp "${file}.XXXXXX")
  printf '%s\n' "$@" >"$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$file"
}

# replace_if_changed SRC DEST [MODE]: move SRC over DEST only when the content differs.
# Prints "changed" or "unchanged". DEST keeps a .comfyume-<ts>.bak copy when replaced.
replace_if_changed() {
  local src=$1 dest=$2 mode=${3:-}
  if [[ -f $dest ]] && cmp -s "$src" "$dest"; then
    rm -f "$src"
    echo unchanged
    return 0
  fi
  mkdir -p "$(dirname "$dest")"
  [[ -f $dest ]] && cp -p "$dest" "${dest}.comfyume-$(date -u +%Y%m%dT%H%M%SZ).bak"
  [[ -n $mode ]] && chmod "$mode" "$src"
  mv -f "$src" "$dest"
  echo changed
}

# install_cron_file SRC CRON_FILE BACKUP_DIR: replace_if_changed for a cron.d file (mode 0644); the
# .bak it keeps goes to BACKUP_DIR, since cron.d should hold only live jobs. Prints changed/unchanged.
install_cron_file() {
  local src=$1 cron_file=$2 backup_dir=$3 result bak
  result=$(replace_if_changed "$src" "$cron_file" 0644)
  for bak in "${cron_file}".comfyume-*.bak; do
    [[ -e $bak ]] || continue
    mkdir -p "$backup_dir"
    mv -f "$bak" "$backup_dir/"
  done
  printf '%s\n' "$result"
}

# fstab_set_entry FSTAB MOUNTPOINT LINE: make LINE the only active fstab entry for MOUNTPOINT
# (comments and other entries kept as they are); prints changed/unchanged. One writer at a time
# (FSTAB.comfyume-lock): the day's chain runs mount-sfs and prepare-scratch side by side.
fstab_set_entry() {
  local fstab=$1 mountpoint=$2 line=$3 tmp fd
  mkdir -p "$(dirname "$fstab")"
  exec {fd}>>"${fstab}.comfyume-lock" || die "cannot open the lock ${fstab}.comfyume-lock"
  flock -w 60 "$fd" || die "another run held ${fstab}.comfyume-lock for 60s: see which (ps -ef), let it finish, then re-run"
  [[ -f $fstab ]] || : >"$fstab"
  tmp=$(mktemp "${fstab}.XXXXXX")
  awk -v mp="$mountpoint" '!($0 !~ /^[[:space:]]*#/ && $2 == mp)' "$fstab" >"$tmp"
  printf '%s\n' "$line" >>"$tmp"
  replace_if_changed "$tmp" "$fstab" 0644
  exec {fd}>&-
}

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

# ---- manifests: "sha256<TAB>md5<TAB>size<TAB>relative path[<TAB>key]", sorted by path ----
# v1 (older runs) has four columns and every entry's bytes under object_key(sha256); v2 adds the
# key that holds the entry's bytes (a fresh copy of a bad object lives under a new key).

COMFYUME_MANIFEST_HEADER='# comfyume-manifest v1: sha256	md5	size	path'
COMFYUME_MANIFEST_PRUNE=()
COMFYUME_MANIFEST_HEADER_V2='# comfyume-manifest v2: sha256	md5	size	path	key'

# ---- hash state: each file's hashes at a given size, mtime and ctime (change detection) ----
# One file per set: a header line, then "path<TAB>size<TAB>mtime<TAB>ctime<TAB>sha256<TAB>md5". It
# lives with the data it describes (the SFS sets' on the SFS, a scratch's on the scratch, mello's
# on mello's disk), so it outlives the instance that is deleted every night. An entry is used only
# while size, mtime and ctime all match: any write changes the ctime, which cannot be set back, so
# a changed file is always read again. Damaged lines are ignored (that file is read again).
# Writers replace the file by rename: two hosts backing up one SFS at once each leave a whole file.
COMFYUME_HASH_STATE_HEADER='# comfyume-hash-state v2: path	size	mtime	ctime	sha256	md5'

# hash_state_load FILE: COMFYUME_HASH_STATE[path]="size<TAB>mtime<TAB>ctime<TAB>sha256<TAB>md5".
hash_state_load() {
  local file=$1 header rel size mtime ctime sha md5
  declare -gA COMFYUME_HASH_STATE=()
  [[ -n $file && -f $file ]] || return 0
  {
    IFS= read -r header || true
    if [[ $header != "$COMFYUME_HASH_STATE_HEADER" ]]; then
      log "hash state ${file} is of an older format: every file is read once"
      return 0
    fi
    while IFS=$'\t' read -r rel size mtime ctime sha md5; do
      [[ -n $rel && $size =~ ^[0-9]+$ && $mtime =~ ^[0-9.]+$ && $ctime =~ ^[0-9.]+$ && $sha =~ ^[0-9a-f]{64}$ && $md5 =~ ^[0-9a-f]{32}$ ]] || continue
      COMFYUME_HASH_STATE[$rel]="${size}	${mtime}	${ctime}	${sha}	${md5}"
    done
  } <"$file"
}

# hash_state_save ENTRIES FILE: atomically replace FILE with the header and ENTRIES (a temporary
# file in FILE's own directory, then a rename). A state that cannot be written costs time on the
# next run, never correctness: it is a warning.
hash_state_save() {
  local entries=$1 file=$2 dir tmpf
  dir=$(dirname "$file")
  tmpf="${dir}/.$(basename "$file").${HOSTNAME:-host}.$$.tmp"
  if mkdir -p "$dir" && { printf '%s\n' "$COMFYUME_HASH_STATE_HEADER" && cat "$entries"; } >"$tmpf" && mv -f "$tmpf" "$file"; then
    # Temporary files of runs killed mid-write (ours, by name) are dropped after a day.
    find "$dir" -maxdepth 1 -name '.hash-cache-*.tmp' -mmin +1440 -delete 2>/dev/null || true
    return 0
  fi
  rm -f "$tmpf" 2>/dev/null || true
  warn "cannot write the hash state ${file}: the next run reads every file of this set again"
}

# hash_state_inside SRC FILE: FILE's directory relative to the directory SRC when it lies inside
# it (it is then left out of the set), else nothing. Dies when it is SRC itself.
hash_state_inside() {
  local src_real state_real
  [[ -n $2 && -d $1 ]] || return 0
  src_real=$(realpath -m -- "$1")
  state_real=$(realpath -m -- "$(dirname "$2")")
  [[ $state_real != "$src_real" ]] || die "the hash state directory $(dirname "$2") is the backup source itself; use a directory outside it (--state-dir)"
  if [[ $state_real == "${src_real}/"* ]]; then printf '%s' "${state_real#"${src_real}"/}"; fi
}

# hash_state_file STATE_DIR BUCKET PREFIX: the hash state of one set (the name r2_backup_tree uses).
hash_state_file() { printf '%s/hash-cache-%s.tsv' "$1" "$(printf '%s' "$2/$3" | tr '/' '_')"; }
# r2_sample_cursor_file STATE_DIR BUCKET PREFIX: where the set's rotating read-back resumes.
r2_sample_cursor_file() { printf '%s/readback-cursor-%s' "$1" "$(printf '%s' "$2/$3" | tr '/' '_')"; }

# hash_state_seed FILE DEST MANIFEST: after a restore of MANIFEST into DEST that checked every
# file's SHA-256, record each entry as DEST holds it now (size, mtime and ctime as written, the
# checked SHA-256, the manifest's MD5 of that same content) in the hash state FILE, merged over
# what it held: the next backup of DEST reads none of these files again. Entries whose size on
# disk differs from the manifest are left out (they are read by the backup).
hash_state_seed() {
  local file=$1 dest=$2 manifest=$3 listing merged
  listing=$(mktemp)
  merged=$(mktemp)
  # The same find format as build_manifest: the backup compares these strings.
  manifest_entries "$manifest" | awk -F'\t' '{ print "./" $4 }' |
    (cd "$dest" && xargs -r -d '\n' bash -c 'find -H "$@" -maxdepth 0 -type f -printf "%p\t%s\t%T@\t%C@\n"' find) >"$listing" 2>/dev/null || true
  hash_state_load "$file"
  {
    awk -F'\t' -v OFS='\t' '
      FNR == NR { sub(/^\.\//, "", $1); st[$1] = $2 OFS $3 OFS $4; sz[$1] = $2; next }
      ($4 in st) && sz[$4] == $3 { print $4, st[$4], $1, $2; seeded[$4] = 1 }
      END { for (p in seeded) print p > "/dev/stderr" }' "$listing" <(manifest_entries "$manifest") 2>"${listing}.seeded"
    local rel
    local -A seeded=()
    while IFS= read -r rel; do seeded[$rel]=1; done <"${listing}.seeded"
    for rel in "${!COMFYUME_HASH_STATE[@]}"; do
      [[ -n ${seeded[$rel]:-} ]] || printf '%s\t%s\n' "$rel" "${COMFYUME_HASH_STATE[$rel]}"
    done
  } | LC_ALL=C sort >"$merged"
  log "hash state: seeded $(wc -l <"${listing}.seeded") restored file(s) into ${file}"
  hash_state_save "$merged" "$file"
  unset COMFYUME_HASH_STATE
  rm -f "$listing" "${listing}.seeded" "$merged"
}

# hash_file FILE [SIZE]: set HASHED_SHA256 and HASHED_MD5 of FILE from ONE read of it (a 25 GB
# model does not fit the page cache: a second pass would read it from disk again). tee feeds md5sum
# and the SHA-256, which run on two cores; both print into the command substitution, which ends
# only when both have exited, and the two digests are told apart by their length. The SHA-256:
# openssl (the CPU's SHA instructions: ~0.6 CPU-s per GB against ~1.9 for coreutils) from 1 MiB
# on; below (SIZE given), coreutils' sha256sum, whose start costs ~1.5 ms less CPU than openssl's.
hash_file() {
  local out line
  if [[ -n ${2:-} ]] && (($2 < 1048576)); then
    out=$({ tee >(md5sum >&3) <"$1" | sha256sum; } 3>&1) || return 1
  else
    out=$({ tee >(md5sum >&3) <"$1" | sha256_stream; } 3>&1) || return 1
  fi
  HASHED_SHA256=
  HASHED_MD5=
  while read -r line; do
    line=${line%% *}
    case ${#line} in 64) HASHED_SHA256=$line ;; 32) HASHED_MD5=$line ;; esac
  done <<<"$out"
  [[ -n $HASHED_SHA256 && -n $HASHED_MD5 ]]
}

# build_manifest SRC OUT [HASH_STATE]: manifest of every regular file under SRC (or of SRC itself
# when it is a file). HASH_STATE (hash_state_load) spares re-reading unchanged files; it is
# rewritten after each run, and left out of SRC when it lies inside it. Directories matching a
# pattern in COMFYUME_MANIFEST_PRUNE (find -path patterns relative to SRC) are left out. Logs
# "hashed N file(s), B bytes; reused M file(s), R bytes" (what was read, what the state spared).
build_manifest() {
  local src=$1 out=$2 cache=${3:-} base rel size mtime ctime sha md5 entry
  local hashed_files=0 hashed_bytes=0 reused_files=0 reused_bytes=0
  hash_state_load "$cache"
  local listing new_state
  listing=$(mktemp)
  new_state=$(mktemp)
  if [[ -f $src ]]; then
    base=$(dirname "$src")
    # -H: the source or its directory may be reached through a symlink (a symlinked mount point).
    find -H "$base" -maxdepth 1 -type f -name "$(basename "$src")" -printf '%P\t%s\t%T@\t%C@\n' >"$listing"
  elif [[ -d $src ]]; then
    base=$src
    # Our own partial downloads and restore staging are never part of a manifest, nor the hash state.
    local prune=(-name .comfyume-staging) pattern state_rel
    for pattern in "${COMFYUME_MANIFEST_PRUNE[@]}"; do prune+=(-o -path "${src}/${pattern}"); done
    state_rel=$(hash_state_inside "$src" "$cache")
    [[ -z $state_rel ]] || prune+=(-o -path "${src}/${state_rel}")
    find -H "$src" \( "${prune[@]}" \) -prune -o -type f ! -name '*.comfyume-partial' -printf '%P\t%s\t%T@\t%C@\n' |
      LC_ALL=C sort >"$listing"
  else
    rm -f "$listing" "$new_state"
    die "backup source ${src} does not exist"
  fi
  # shellcheck disable=SC2046  # two numbers
  progress_begin hashing $(awk -F'\t' '{ n++; b += $2 } END { printf "%d %.0f", n, b }' "$listing")
  {
    printf '%s\n' "$COMFYUME_MANIFEST_HEADER"
    while IFS=$'\t' read -r rel size mtime ctime; do
      # (every 256 files: a beat per file was a file write per file; a file hashed gets its own below)
      if (((hashed_files + reused_files) % 256 == 0)); then progress_at $((hashed_files + reused_files)) $((hashed_bytes + reused_bytes)) "$rel"; fi
      [[ $rel != *$'\n'* && $rel != *$'\t'* ]] || die "file name with a tab or newline under ${src}: rename it"
      entry=${COMFYUME_HASH_STATE[$rel]:-}
      if [[ -n $entry && $entry == "${size}	${mtime}	${ctime}	"* ]]; then
        md5=${entry##*	}
        entry=${entry%	*}
        sha=${entry##*	}
        reused_files=$((reused_files + 1))
        reused_bytes=$((reused_bytes + size))
      else
        progress_at $((hashed_files + reused_files)) $((hashed_bytes + reused_bytes)) "$rel"
        hash_file "${base}/${rel}" "$size" || die "cannot read ${base}/${rel}"
        sha=$HASHED_SHA256
        md5=$HASHED_MD5
        hashed_files=$((hashed_files + 1))
        hashed_bytes=$((hashed_bytes + size))
      fi
      printf '%s\t%s\t%s\t%s\n' "$sha" "$md5" "$size" "$rel"
      printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$rel" "$size" "$mtime" "$ctime" "$sha" "$md5" >>"$new_state"
    done <"$listing"
  } >"$out"
  progress_at $((hashed_files + reused_files)) $((hashed_bytes + reused_bytes))
  progress_end
  rm -f "$listing"
  unset COMFYUME_HASH_STATE
  log "hashed ${hashed_files} file(s), ${hashed_bytes} bytes; reused ${reused_files} file(s), ${reused_bytes} bytes (hash state ${cache:-none})"
  if [[ -n $cache ]]; then hash_state_save "$new_state" "$cache"; fi
  rm -f "$new_state"
}

# manifest_entries FILE: "sha256<TAB>md5<TAB>size<TAB>path" of every entry (v1 or v2).
manifest_entries() { awk -F'\t' -v OFS='\t' '!/^#/ && NF { print $1, $2, $3, $4 }' "$1"; }

# object_key SHA256 [GENERATION]: content-addressed key, so unchanged files are never sent twice
# and an existing key is never overwritten with different bytes. Generation 2, 3, ... (suffix .gN)
# are fresh copies written when an earlier copy was found altered in R2 (append-only healing).
object_key() {
  if ((${2:-1} > 1)); then
    printf 'objects/%s/%s.g%s' "${1:0:2}" "$1" "$2"
  else
    printf 'objects/%s/%s' "${1:0:2}" "$1"
  fi
}

# manifest_keyed_entries FILE: "sha256<TAB>md5<TAB>size<TAB>path<TAB>key" for every entry: the
# key (relative to the set's prefix) holding the entry's bytes; object_key(sha256) for v1 lines.
# Fails on a key that is not a generation of the entry's own content key.
manifest_keyed_entries() {
  awk -F'\t' -v OFS='\t' '
    /^#/ || !NF { next }
    {
      base = "objects/" substr($1, 1, 2) "/" $1
      key = (NF >= 5 && $5 != "") ? $5 : base
      if (length($1) != 64 || $1 ~ /[^0-9a-f]/ || (key != base && (substr(key, 1, length(base) + 2) != base ".g" || substr(key, length(base) + 3) !~ /^[0-9]+$/))) {
        print "manifest line " NR ": invalid sha256 or object key for " $4 > "/dev/stderr"
        bad = 1
        exit 1
      }
      print $1, $2, $3, $4, key
    }
    END { exit bad }' "$1"
}

# object_generation KEY: 1 for objects/ab/<sha>, N for objects/ab/<sha>.gN, 0 if neither.
object_generation() {
  local base=${1##*/}
  if [[ $base != *.* ]]; then
    echo 1
  elif [[ ${base##*.g} =~ ^[0-9]+$ ]]; then
    echo "${base##*.g}"
  else
    echo 0
  fi
}

# cause_last_on_exit: register an exit hook that, on failure, repeats the cause (the die message)
# as the very last line of stderr, after the step summary: a failed remote command shows its
# last lines, and they must say what went wrong and what to do.
cause_last_on_exit() { on_exit _print_cause_last; }
_print_cause_last() {
  ((${COMFYUME_EXIT_CODE:-0} != 0)) || return 0
  if [[ -n ${COMFYUME_DIE_MESSAGE:-} ]]; then
    log "FAILED: ${COMFYUME_DIE_MESSAGE}"
  else
    log "FAILED: step '${COMFYUME_CURRENT_STEP}' stopped with exit ${COMFYUME_EXIT_CODE} (interrupted, or an unexpected error); see ${COMFYUME_LOG_FILE:-the log above}"
  fi
}

# curl's words for an endpoint it could not reach or that went away mid-transfer (_r2_get).
R2_CURL_UNREACHABLE="Failed to connect|Couldn't connect|Could not resolve host|Connection timed out|transfer closed with|Recv failure|Empty reply from server"
# curl's words for an R2 that cannot be reached at all. (A read-back answer cut short, "transfer
# closed with", is one object unreadable while R2 answers: it is counted bad and healed, not
# reported as R2 unreachable: readback-short-object.test.ts.)
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

# manifest_totals FILE: "files bytes" of a manifest (0 0 for an empty or absent one).
manifest_totals() {
  if [[ -s $1 ]]; then
    manifest_entries "$1" | awk -F'\t' '{ n++; b += $3 } END { printf "%d %.0f\n", n, b }'
  else
    echo "0 0"
  fi
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
  COMFYUME_EXIT_HOOKS=()
  COMFYUME_PROGRESS_HOOKED=
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

# manifest_path_problem REL: why the manifest path REL must not be restored, in PATH_PROBLEM (empty
# when REL is a plain relative path). Restore writes DEST/REL, so REL must stay inside DEST. (A
# variable, not printed: validate_manifest_paths calls it per entry, and a $(...) per entry cost
# ~4 ms each under load, seconds for a scratch of thousands of files.)
manifest_path_problem() {
  local rel=$1 part plain=false
  local -a parts
  PATH_PROBLEM=
  [[ -n $rel ]] || { PATH_PROBLEM='empty path'; return 0; }
  [[ $rel != /* ]] || { PATH_PROBLEM='absolute path'; return 0; }
  [[ $rel != *[[:cntrl:]]* ]] || { PATH_PROBLEM='control character in the path'; return 0; }
  IFS=/ read -ra parts <<<"$rel"
  for part in "${parts[@]}"; do
    [[ $part != .. ]] || { PATH_PROBLEM="'..' component"; return 0; }
    [[ -z $part || $part == . ]] || plain=true
  done
  [[ $plain == true ]] || { PATH_PROBLEM='empty path'; return 0; }
  [[ ${parts[0]} != .comfyume-staging ]] || PATH_PROBLEM="inside the restore's own staging directory"
}

# validate_manifest_paths MANIFEST DEST [LABEL]: die, naming LABEL (the manifest's key), the entry
# and why, unless every entry is a well-formed line whose path stays inside DEST: not absolute,
# no '..', not empty, no control characters or NULs, and no directory on the way (nor the entry
# itself) a symlink that leads outside DEST. Runs before anything of the manifest is written.
validate_manifest_paths() {
  local manifest=$1 dest=$2 label=${3:-$1} line n=0 sha md5 size rel key why dir real dest_real shown
  local fix="refusing to restore anything from this manifest. It was not written by backup-to-r2.sh or it was altered: check who can write to the bucket, and restore from an older manifest (seed-sfs.sh --manifest SET=KEY)"
  local -A dir_real=()
  if [[ $(tr -d '\000' <"$manifest" | wc -c) != "$(wc -c <"$manifest")" ]]; then
    die "unsafe manifest entry in ${label}: the manifest contains NUL bytes; ${fix}"
  fi
  dest_real=$(realpath -m -- "$dest")
  while IFS= read -r line || [[ -n $line ]]; do
    n=$((n + 1))
    [[ $line != \#* ]] || continue
    # v2 manifests add the object key as a fifth column (checked by manifest_keyed_entries).
    IFS=$'\t' read -r sha md5 size rel key <<<"$line"
    : "$key"
    shown=$rel
    [[ $rel != *[[:cntrl:]]* ]] || shown=$(printf '%q' "$rel")
    if [[ ! $sha =~ ^[0-9a-f]{64}$ || ! $size =~ ^[0-9]+$ || $line != *$'\t'*$'\t'*$'\t'* ]]; then
      die "unsafe manifest entry in ${label} (line ${n}): '$(printf '%q' "$line")' is not a manifest line (sha256, md5, size, path; a path with a newline breaks it); ${fix}"
    fi
    manifest_path_problem "$rel"
    why=$PATH_PROBLEM
    [[ -z $why ]] || die "unsafe manifest entry in ${label} (line ${n}): '${shown}': ${why}; ${fix}"
    # (the directory part without a dirname process per entry)
    dir=.
    [[ $rel != */* ]] || dir=${rel%/*}
    if [[ -z ${dir_real[$dir]:-} ]]; then
      dir_real[$dir]=$(realpath -m -- "${dest}/${dir}")
    fi
    real=${dir_real[$dir]}
    if [[ -L ${dest}/${rel} ]]; then real=$(realpath -m -- "${dest}/${rel}"); fi
    if [[ $real != "$dest_real" && $real != "${dest_real}/"* ]]; then
      die "unsafe manifest entry in ${label} (line ${n}): '${shown}' would be written through a symlink in ${dest} that leads outside it (to ${real}); nothing was restored. Move that symlink away (it is not part of any backup) and re-run"
    fi
  done <"$manifest"
  real=$(realpath -m -- "${dest}/.comfyume-staging")
  [[ $real == "${dest_real}/.comfyume-staging" ]] ||
    die "${dest}/.comfyume-staging is a symlink leading outside ${dest} (to ${real}); nothing was restored. Remove it and re-run"
}

# sha256_batch LIST OUT: "sha256<TAB>path" in OUT for every path of the NUL-separated LIST that
# could be read: one sha256sum start per few thousand files (xargs), not one per file, which is
# what a restore of many small scratch files spent its time on. Unreadable paths are left out
# (callers treat a path without a hash as failed). Manifest paths hold no control characters
# (validate_manifest_paths), so a tab-separated line is unambiguous; -z prints names unescaped.
sha256_batch() {
  local list=$1 out=$2 rec
  : >"$out"
  [[ -s $list ]] || return 0
  if sha256_openssl; then
    # "<sha256> *<path>" per file read (an unreadable one is skipped with an error on stderr).
    xargs -0 -r openssl dgst -sha256 -r -- <"$list" 2>/dev/null | sed -n 's/^\([0-9a-f]\{64\}\) \*/\1\t/p' >"$out" || true
    return 0
  fi
  while IFS= read -r -d '' rec; do
    printf '%s\t%s\n' "${rec:0:64}" "${rec:66}"
  done < <(xargs -0 -r sha256sum -z -- <"$list" 2>/dev/null || true) >"$out"
}

# sha256_openssl: true when the restore's SHA-256 is computed by openssl (with the CPU's SHA
# instructions: ~2 GB/s a core here, against ~0.55 GB/s for coreutils' sha256sum, which has none;
# measured in docs/backups.md). The restore hashes every byte it writes, so on a shared 2-core
# machine the hasher set its speed. COMFYUME_SHA256_TOOL=sha256sum forces coreutils.
sha256_openssl() {
  if [[ -z ${COMFYUME_SHA256_OPENSSL:-} ]]; then
    COMFYUME_SHA256_OPENSSL=no
    if [[ ${COMFYUME_SHA256_TOOL:-openssl} == openssl ]] && command -v openssl >/dev/null &&
      [[ $(printf abc | openssl dgst -sha256 -r 2>/dev/null) == ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad* ]]; then
      COMFYUME_SHA256_OPENSSL=yes
    fi
  fi
  [[ $COMFYUME_SHA256_OPENSSL == yes ]]
}

# sha256_stream: the SHA-256 of stdin ("<sha256> ..." on stdout), by openssl where sha256_openssl.
sha256_stream() {
  if sha256_openssl; then openssl dgst -sha256 -r; else sha256sum; fi
}

# sha256_load FILE...: COMFYUME_SHA256[path]=sha256 from sha256_batch's output file(s).
sha256_load() {
  local sha path
  declare -gA COMFYUME_SHA256=()
  while IFS=$'\t' read -r sha path; do COMFYUME_SHA256[$path]=$sha; done < <(cat -- "$@")
}

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
  local bucket=$1 prefix=$2 staging=$3 hashes=$4 key size running=0 n=0
  # (no job control inside: every download stays in this process group)
  set +m
  while IFS=$'\t' read -r key size; do
    if ((running >= 4)); then wait -n || true; running=$((running - 1)); fi
    _r2_stream_one "$bucket" "${prefix}/objects/${key}" "$size" "${staging}/${key}" "${hashes}.9s${n}" "${hashes}.err.s${n}" &
    running=$((running + 1)) n=$((n + 1))
  done <"${hashes}.big"
  wait || true
}

_r2_stream_one() {
  local bucket=$1 key=$2 size=$3 staged=$4 out=$5 err=$6 rc=0
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
  local bucket=$1 mkey=$2 dest=$3 repair=${4:-0} work prefix sha md5 size rel key target got staging staged
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
  while IFS=$'\t' read -r sha md5 size rel key; do
    if [[ -f ${dest}/${rel} ]]; then printf '%s\0' "${dest}/${rel}"; fi
  done <"${work}/entries.tsv" >"${work}/present"
  sha256_batch "${work}/present" "${work}/present.sha"
  sha256_load "${work}/present.sha"
  : >"${work}/fetch.tsv"
  : >"${work}/todo.tsv"
  while IFS=$'\t' read -r sha md5 size rel key; do
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

# check_tree_against_manifest DIR MANIFEST: every entry present with its SHA-256 (one batch).
check_tree_against_manifest() {
  local dir=$1 manifest=$2 sha md5 size rel got bad=0 work
  validate_manifest_paths "$manifest" "$dir"
  work=$(mktemp -d)
  manifest_entries "$manifest" >"${work}/entries.tsv"
  while IFS=$'\t' read -r sha md5 size rel; do printf '%s\0' "${dir}/${rel}"; done <"${work}/entries.tsv" >"${work}/paths"
  sha256_batch "${work}/paths" "${work}/sha"
  sha256_load "${work}/sha"
  while IFS=$'\t' read -r sha md5 size rel; do
    if [[ ! -f ${dir}/${rel} ]]; then
      log "MANIFEST CHECK: missing ${dir}/${rel}"
      bad=$((bad + 1))
      continue
    fi
    got=${COMFYUME_SHA256[${dir}/${rel}]:-unreadable}
    if [[ $got != "$sha" ]]; then
      log "MANIFEST CHECK: ${dir}/${rel} has sha256 ${got}, expected ${sha}"
      bad=$((bad + 1))
    fi
  done <"${work}/entries.tsv"
  unset COMFYUME_SHA256
  rm -rf "$work"
  ((bad == 0)) || die "manifest check of ${dir} failed for ${bad} file(s)"
}

# take_lock LOCKFILE [WAIT_SECONDS [HOLDER]]: hold an exclusive flock on LOCKFILE until this
# script exits. Without WAIT_SECONDS it fails at once when another run holds it; with it, it
# waits that long for HOLDER (e.g. "the hourly job") to finish. Every holder records itself in
# LOCKFILE.owner (script, pid, since) so that a refusal names who holds the lock.
take_lock() {
  local lockfile=$1 wait=${2:-0} holder=${3:-another run} fd
  mkdir -p "$(dirname "$lockfile")" || die "cannot create the lock directory for ${lockfile}"
  exec {fd}>>"$lockfile" || die "cannot open lock file ${lockfile}"
  if ! flock -n "$fd"; then
    if ((wait <= 0)); then
      die "another run holds the lock ${lockfile} ($(lock_owner "$lockfile")); overlapping runs are refused (wait for it, or look for a stuck process with: ps -ef)"
    fi
    log "waiting up to ${wait}s for the lock ${lockfile}, held by ${holder} ($(lock_owner "$lockfile"))"
    flock -w "$wait" "$fd" ||
      die "lock held by ${holder} ($(lock_owner "$lockfile")): waited ${wait}s for ${lockfile}. Let it finish and re-run; if it is stuck, stop that process first"
  fi
  # (the descriptor stays open, and the lock held, until the script exits)
  printf '%s\t%s\t%s\n' "$COMFYUME_SCRIPT_NAME" "$$" "$(_ts)" >"${lockfile}.owner" 2>/dev/null || true
}

# lock_owner LOCKFILE: "script, pid N, since T" of the run that last took LOCKFILE, if it still runs.
lock_owner() {
  local script pid since
  IFS=$'\t' read -r script pid since <"${1}.owner" 2>/dev/null || true
  if [[ $pid =~ ^[0-9]+$ && -d /proc/${pid} ]]; then
    printf '%s, pid %s, since %s' "$script" "$pid" "$since"
  else
    printf 'holder not recorded'
  fi
}

# ==== progress of long steps: log lines, a JSON file, stall warnings ====
# A long phase (hashing a set, sending it, fetching it) calls progress_begin with its totals,
# progress_at as it goes (one small write per file: cheap) and progress_end. A background reporter
# logs "PROGRESS ..." every COMFYUME_PROGRESS_SECONDS and writes COMFYUME_PROGRESS_FILE (JSON, read
# by `npm run status`); a phase whose counts have not moved for COMFYUME_STALL_SECONDS is logged as
# STALLED, naming the file it is on (a warning: the work goes on). 0 seconds switches either off.

COMFYUME_PROGRESS_SECONDS=${COMFYUME_PROGRESS_SECONDS:-10}
COMFYUME_STALL_SECONDS=${COMFYUME_STALL_SECONDS:-300}
COMFYUME_PROGRESS_FILE=${COMFYUME_PROGRESS_FILE:-${COMFYUME_ROOT:-}/var/lib/comfyume/progress/${COMFYUME_SCRIPT_NAME%.sh}.json}

# progress_begin PHASE FILES_TOTAL BYTES_TOTAL [DIR [SIZES]]: start reporting PHASE of the current
# step. With DIR, the reporter counts the files and bytes in DIR itself (downloads landing there);
# SIZES ("path under DIR<TAB>size" lines) makes a file count as done only once it has its full size.
progress_begin() {
  local setting
  for setting in COMFYUME_PROGRESS_SECONDS COMFYUME_STALL_SECONDS; do
    [[ ${!setting} =~ ^[0-9]+$ ]] || die "${setting}='${!setting}' is not a whole number of seconds (0 switches it off); fix or unset it"
  done
  progress_end running
  COMFYUME_PROGRESS_PHASE="${COMFYUME_CURRENT_STEP}: $1"
  COMFYUME_PROGRESS_TOTALS="$2 $3"
  COMFYUME_PROGRESS_START=$(date +%s)
  COMFYUME_PROGRESS_START_US=${EPOCHREALTIME/./}
  COMFYUME_PROGRESS_BEAT=$(mktemp)
  COMFYUME_PROGRESS_DIR=${4:-}
  COMFYUME_PROGRESS_SIZES=${5:-/dev/null}
  printf '0\t0\t\n' >"$COMFYUME_PROGRESS_BEAT"
  mkdir -p "$(dirname "$COMFYUME_PROGRESS_FILE")" 2>/dev/null || warn "cannot create $(dirname "$COMFYUME_PROGRESS_FILE"): progress is only logged"
  if [[ -z ${COMFYUME_PROGRESS_HOOKED:-} ]]; then
    COMFYUME_PROGRESS_HOOKED=1
    on_exit _progress_on_exit
  fi
  _progress_write running 0
  _progress_reporter &
  COMFYUME_PROGRESS_PID=$!
}

# progress_at FILES_DONE BYTES_DONE [CURRENT]: counts so far, and the file being worked on.
progress_at() {
  [[ -n ${COMFYUME_PROGRESS_BEAT:-} ]] || return 0
  printf '%s\t%s\t%s\n' "$1" "$2" "${3:-}" >"$COMFYUME_PROGRESS_BEAT" 2>/dev/null || true
}

# progress_end [STATE]: stop the reporter; log and write the final counts (STATE: done, failed).
progress_end() {
  [[ -n ${COMFYUME_PROGRESS_BEAT:-} ]] || return 0
  if [[ -n ${COMFYUME_PROGRESS_PID:-} ]]; then
    kill "$COMFYUME_PROGRESS_PID" 2>/dev/null || true
    wait "$COMFYUME_PROGRESS_PID" 2>/dev/null || true
  fi
  if [[ -n ${COMFYUME_PROGRESS_DIR:-} ]]; then _progress_measure_dir "$COMFYUME_PROGRESS_DIR"; fi
  _progress_report "${1:-done}" 0
  rm -f "$COMFYUME_PROGRESS_BEAT"
  COMFYUME_PROGRESS_BEAT=
  COMFYUME_PROGRESS_PID=
}

_progress_on_exit() {
  if ((${COMFYUME_EXIT_CODE:-0} != 0)); then progress_end failed; else progress_end "done"; fi
}

# progress_rclone_json LOG: a filter for rclone's stderr run with --use-json-log and
# --stats <N>s: every line goes to LOG; each stats line becomes progress_at (rclone's own counts).
progress_rclone_json() {
  local line stats
  while IFS= read -r line; do
    printf '%s\n' "$line" >>"$1"
    [[ $line == *'"stats":'* ]] || continue
    stats=$(jq -r '.stats | [.transfers // 0, .bytes // 0, (.transferring[0]?.name // "")] | @tsv' <<<"$line" 2>/dev/null) || continue
    IFS=$'\t' read -r -a stats <<<"$stats"
    progress_at "${stats[0]:-0}" "${stats[1]:-0}" "${stats[2]:-}"
  done
}

# The reporter: wakes every second; reports every COMFYUME_PROGRESS_SECONDS; warns of a stall.
_progress_reporter() {
  trap - EXIT ERR HUP INT PIPE
  local nap='' beat last='' now changed reported stall_logged=0 parent=$$
  trap '[[ -z $nap ]] || kill "$nap" 2>/dev/null; exit 0' TERM
  changed=$(date +%s)
  reported=$changed
  while [[ -d /proc/${parent} ]]; do
    sleep 1 &
    nap=$!
    wait "$nap" || true
    now=$(date +%s)
    if [[ -n $COMFYUME_PROGRESS_DIR ]]; then _progress_measure_dir "$COMFYUME_PROGRESS_DIR"; fi
    beat=$(cat "$COMFYUME_PROGRESS_BEAT" 2>/dev/null) || true
    if [[ -n $beat && $beat != "$last" ]]; then
      last=$beat
      changed=$now
      stall_logged=0
    fi
    if ((COMFYUME_STALL_SECONDS > 0 && now - changed >= COMFYUME_STALL_SECONDS && now - stall_logged >= COMFYUME_STALL_SECONDS)); then
      stall_logged=$now
      _progress_report stalled $((now - changed))
      reported=$now
    elif ((COMFYUME_PROGRESS_SECONDS > 0 && now - reported >= COMFYUME_PROGRESS_SECONDS)); then
      _progress_report running 0
      reported=$now
    fi
  done
}

# _progress_measure_dir DIR: progress_at from what DIR holds (a file still being written counts
# its bytes, not as a file; the newest file is the one being worked on).
_progress_measure_dir() {
  local counts
  counts=$(find "$1" -type f -printf '%T@\t%s\t%P\n' 2>/dev/null |
    awk -F'\t' 'FNR == NR { want[$1] = $2; next }
      { b += $2; if ($3 !~ /\.partial$/ && (!($3 in want) || want[$3] == $2)) n++; if ($1 >= t) { t = $1; f = $3 } }
      END { printf "%d\t%.0f\t%s", n, b, f }' "${COMFYUME_PROGRESS_SIZES:-/dev/null}" -) || return 0
  printf '%s\n' "$counts" >"$COMFYUME_PROGRESS_BEAT" 2>/dev/null || true
}

# _progress_report STATE STUCK_SECONDS: one log line and the JSON file, from the current counts.
_progress_report() {
  local state=$1 stuck=$2 files bytes current ftotal btotal elapsed rate eta pct
  IFS=$'\t' read -r files bytes current <"$COMFYUME_PROGRESS_BEAT" 2>/dev/null || true
  [[ ${files:-} =~ ^[0-9]+$ && ${bytes:-} =~ ^[0-9]+$ ]] || { files=0; bytes=0; }
  read -r ftotal btotal <<<"$COMFYUME_PROGRESS_TOTALS"
  # (milliseconds: a short phase still gets a rate)
  elapsed=$(((${EPOCHREALTIME/./} - COMFYUME_PROGRESS_START_US) / 1000))
  rate=$((elapsed > 0 ? bytes * 1000 / elapsed : 0))
  eta=$((rate > 0 && btotal > bytes ? (btotal - bytes) / rate : 0))
  pct=$((btotal > 0 ? bytes * 100 / btotal : 100))
  if [[ $state == stalled ]]; then
    warn "STALLED: step '${COMFYUME_PROGRESS_PHASE}' has made no progress for ${stuck}s, on '${current:-?}' (files ${files}/${ftotal}, bytes ${bytes}/${btotal}); still waiting for it, not stopping it"
  else
    log "PROGRESS ${COMFYUME_PROGRESS_PHASE}: files ${files}/${ftotal} bytes ${bytes}/${btotal} (${pct}%) $(_progress_human "$rate")/s ETA ${eta}s${current:+ on ${current}}$([[ $state == running ]] || printf ' [%s]' "$state")"
  fi
  COMFYUME_PROGRESS_SNAPSHOT="${files} ${bytes} ${rate} ${eta} ${stuck}	${current}"
  _progress_write "$state" "$stuck"
}

# _progress_write STATE STUCK_SECONDS: the JSON file, replaced by rename (a reader never sees half).
_progress_write() {
  local files=0 bytes=0 rate=0 eta=0 current='' ftotal btotal tmpf
  if [[ -n ${COMFYUME_PROGRESS_SNAPSHOT:-} ]]; then
    read -r files bytes rate eta _ <<<"${COMFYUME_PROGRESS_SNAPSHOT%%	*}"
    current=${COMFYUME_PROGRESS_SNAPSHOT#*	}
  fi
  COMFYUME_PROGRESS_SNAPSHOT=
  read -r ftotal btotal <<<"$COMFYUME_PROGRESS_TOTALS"
  current=${current//\\/\\\\}
  current=${current//\"/\\\"}
  tmpf="${COMFYUME_PROGRESS_FILE}.$$.${BASHPID}.tmp"
  printf '{"script":"%s","step":"%s","state":"%s","files_done":%s,"files_total":%s,"bytes_done":%s,"bytes_total":%s,"rate_bytes_per_second":%s,"eta_seconds":%s,"stalled_seconds":%s,"current":"%s","started_at":"%s","updated_at":"%s"}\n' \
    "$COMFYUME_SCRIPT_NAME" "${COMFYUME_PROGRESS_PHASE//\"/}" "$1" "$files" "$ftotal" "$bytes" "$btotal" "$rate" "$eta" "$2" "$current" \
    "$(date -u -d "@${COMFYUME_PROGRESS_START}" +%Y-%m-%dT%H:%M:%SZ)" "$(_ts)" >"$tmpf" 2>/dev/null &&
    mv -f "$tmpf" "$COMFYUME_PROGRESS_FILE" 2>/dev/null || rm -f "$tmpf" 2>/dev/null || true
}

# _progress_human BYTES: "12.3 MiB" style.
_progress_human() {
  awk -v b="$1" 'BEGIN { split("B KiB MiB GiB TiB", u); i = 1; while (b >= 1024 && i < 5) { b /= 1024; i++ } printf (i == 1 ? "%d %s" : "%.1f %s"), b, u[i] }'
}

# ---- flat buckets (the workshop's own layout: plain keys, no manifests; seed-flat.sh) ----
# The listing's ETag is what a flat object is checked against: rclone's listing shows no ETag for a
# multipart object, so the listing and the part-size probe are plain S3 requests signed by curl
# (--aws-sigv4). The keys reach curl on stdin (-K -), never on its command line or in its environment.

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

# ---- Redis health (restore-instance.sh, start-app.sh) ----
# redis_ping: AUTH (when REDIS_PASSWORD is set) + PING to REDIS_HOST:REDIS_PORT over a bash TCP socket,
# so the password never reaches argv. On failure REDIS_ERROR says why.
# shellcheck disable=SC2034  # REDIS_ERROR is read by the caller
redis_ping() {
  local fd reply
  # Braces: a bare `exec ... 2>/dev/null` would silence this shell's stderr for good.
  { exec {fd}<>"/dev/tcp/${REDIS_HOST}/${REDIS_PORT}"; } 2>/dev/null || return 1
  if [[ -n ${REDIS_PASSWORD:-} ]]; then
    # shellcheck disable=SC2016  # "$4" is RESP bulk-length syntax, not a shell expansion
    printf '*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n' "${#REDIS_PASSWORD}" "$REDIS_PASSWORD" >&"$fd"
    IFS= read -r -t 5 reply <&"$fd" || reply=""
    if [[ ${reply%$'\r'} != "+OK" ]]; then
      exec {fd}>&-
      REDIS_ERROR="AUTH refused (${reply%$'\r'}): check REDIS_PASSWORD (the project's .env)"
      return 1
    fi
  fi
  # shellcheck disable=SC2016  # RESP syntax
  printf '*1\r\n$4\r\nPING\r\n' >&"$fd"
  IFS= read -r -t 5 reply <&"$fd" || reply=""
  exec {fd}>&-
  [[ ${reply%$'\r'} == "+PONG" ]] || {
    REDIS_ERROR="unexpected reply '${reply%$'\r'}'"
    return 1
  }
}
