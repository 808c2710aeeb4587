# shellcheck shell=bash
# Its parts (below) resolve from a checked script in host/ or setup/, beside lib/, or in lib/ itself:
# shellcheck source-path=SCRIPTDIR/../lib source-path=SCRIPTDIR
# Shared library for every comfyume-infra shell script: logging, step timing,
# retries, locks and a `die` that names the failing step. Its other parts live beside it
# (lib/r2.sh, manifest.sh, r2-verify.sh, r2-backup.sh, r2-restore.sh, progress.sh, flat.sh):
# it sources them all at its end, so a script sources this one file and has the whole library.
# Source it; it does not change shell options of the caller beyond strict mode,
# and it installs ERR and EXIT traps (use on_exit to add exit work).

set -euo pipefail

COMFYUME_SCRIPT_NAME=${COMFYUME_SCRIPT_NAME:-$(basename "${0:-comfyume}")}
COMFYUME_CURRENT_STEP=${COMFYUME_CURRENT_STEP:-startup}
# Summary rows "step<TAB>seconds<TAB>result", printed by step_summary.
COMFYUME_STEP_ROWS=()

# Time stamps and step durations come from bash itself (printf's %(...)T, EPOCHREALTIME), not a forked
# `date`: a script logs dozens of lines, and on a busy first boot every fork counts.
COMFYUME_TS_FORMAT='%Y-%m-%dT%H:%M:%SZ'
_ts() { TZ=UTC0 printf "%(${COMFYUME_TS_FORMAT})T" -1; }

# _clock VAR: VAR = tenths of a second since the epoch (bash 5's EPOCHREALTIME; `date` on an older bash).
_clock() {
  local us=${EPOCHREALTIME:-}
  us=${us//[!0-9]/}
  [[ ${#us} -gt 6 ]] || us=$(date +%s%6N)
  printf -v "$1" '%s' "${us:0:${#us}-5}"
}

# _tenths VAR N: VAR = N tenths of a second as seconds with one decimal ("12.3").
_tenths() { printf -v "$1" '%d.%d' "$(($2 / 10))" "$(($2 % 10))"; }

# Log lines go to stderr, and also to COMFYUME_LOG_FILE when a script sets one (log_to_file).
# The file is written first: when stderr is gone (SSH connection dropped), the file still has it.
log() {
  local line
  TZ=UTC0 printf -v line "%(${COMFYUME_TS_FORMAT})T [%s] %s" -1 "$COMFYUME_SCRIPT_NAME" "$*"
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
  local previous=$COMFYUME_CURRENT_STEP end took
  COMFYUME_CURRENT_STEP=$name
  _clock COMFYUME_STEP_START
  COMFYUME_STEP_RESULT=ok
  COMFYUME_IN_STEP=1
  log "step ${name}: start"
  "$@"
  COMFYUME_IN_STEP=
  _clock end
  _tenths took "$((end - COMFYUME_STEP_START))"
  COMFYUME_STEP_ROWS+=("${name}	${took}	${COMFYUME_STEP_RESULT}")
  log "step ${name}: done in ${took}s (${COMFYUME_STEP_RESULT})"
  COMFYUME_CURRENT_STEP=$previous
}

# on_exit CMD...: run CMD when the script exits (after failure accounting).
COMFYUME_EXIT_HOOKS=()
on_exit() { COMFYUME_EXIT_HOOKS+=("$*"); }

_on_exit() {
  local rc=$? hook
  if ((rc != 0)) && [[ -n ${COMFYUME_IN_STEP:-} ]]; then
    COMFYUME_IN_STEP=
    local now took
    _clock now
    _tenths took "$((now - ${COMFYUME_STEP_START:-$now}))"
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

# ---- the library's other parts (every script gets all of them: one `source` line each) ----
# (No $(...): every script start pays for this file.)
COMFYUME_LIB_DIR=.
[[ ${BASH_SOURCE[0]} != */* ]] || COMFYUME_LIB_DIR=${BASH_SOURCE[0]%/*}
# shellcheck source=r2.sh
source "${COMFYUME_LIB_DIR}/r2.sh"
# shellcheck source=manifest.sh
source "${COMFYUME_LIB_DIR}/manifest.sh"
# shellcheck source=r2-verify.sh
source "${COMFYUME_LIB_DIR}/r2-verify.sh"
# shellcheck source=r2-backup.sh
source "${COMFYUME_LIB_DIR}/r2-backup.sh"
# shellcheck source=r2-restore.sh
source "${COMFYUME_LIB_DIR}/r2-restore.sh"
# shellcheck source=progress.sh
source "${COMFYUME_LIB_DIR}/progress.sh"
# shellcheck source=flat.sh
source "${COMFYUME_LIB_DIR}/flat.sh"
