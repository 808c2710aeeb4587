# shellcheck shell=bash
# Shared library for every comfyume-infra shell script: logging, step timing,
# retries, locks and a `die` that names the failing step.
# Source it; it does not change shell options of the caller beyond strict mode.

set -euo pipefail

COMFYUME_SCRIPT_NAME=${COMFYUME_SCRIPT_NAME:-$(basename "${0:-comfyume}")}
COMFYUME_CURRENT_STEP=${COMFYUME_CURRENT_STEP:-startup}
# Summary rows "step<TAB>seconds<TAB>result", printed by step_summary.
COMFYUME_STEP_ROWS=()

_ts() { date -u +%Y-%m-%dT%H:%M:%SZ; }

log() { printf '%s [%s] %s\n' "$(_ts)" "$COMFYUME_SCRIPT_NAME" "$*" >&2; }
warn() { log "WARN: $*"; }

# die MESSAGE: exit non-zero, naming the step that failed.
die() {
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
step() {
  local name=$1
  shift
  local previous=$COMFYUME_CURRENT_STEP start end rc=0
  COMFYUME_CURRENT_STEP=$name
  start=$(date +%s)
  log "step ${name}: start"
  "$@" || rc=$?
  end=$(date +%s)
  if ((rc != 0)); then
    COMFYUME_STEP_ROWS+=("${name}	$((end - start))	FAILED")
    log "step ${name}: FAILED after $((end - start))s (exit ${rc})"
    step_summary
    exit "$rc"
  fi
  COMFYUME_STEP_ROWS+=("${name}	$((end - start))	ok")
  log "step ${name}: done in $((end - start))s"
  COMFYUME_CURRENT_STEP=$previous
}

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
  } >&2
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

# with_lock LOCKFILE CMD...: run CMD holding an exclusive flock; fails at once if held.
with_lock() {
  local lockfile=$1
  shift
  mkdir -p "$(dirname "$lockfile")"
  (
    flock -n 9 || die "another run holds the lock ${lockfile}"
    "$@"
  ) 9>"$lockfile"
}

# require_cmd NAME...: fail with a clear message when a tool is missing.
require_cmd() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || die "required command '${c}' not found on PATH"
  done
}
