#!/usr/bin/env bash
# app-r2-hourly.sh: the app host's hourly copy of the users' files to R2, beside the hourly snapshot
# into the SFS cache (install-backup-cron.sh). backup-mello.sh does the copy with the project's backup
# engine: content-addressed objects, a new manifest per run, every entry checked in R2 after the upload.
#
# Usage:
#   printf 'R2_ACCESS_KEY_ID=...\nR2_SECRET_ACCESS_KEY=...\n' |
#     app-r2-hourly.sh install [--schedule "M H D M W"] -- BACKUP-MELLO-OPTIONS...
#   app-r2-hourly.sh run -- BACKUP-MELLO-OPTIONS...        (what cron runs)
#
#   --schedule S       cron schedule (default "30 * * * *": hourly, away from the snapshot at :00)
#   --cron-file FILE   (default ${COMFYUME_ROOT}/etc/cron.d/comfyume-app-r2-hourly)
#   --keys-file FILE   the R2 keys for cron, root-only, mode 0600 (default ${COMFYUME_ROOT}/etc/comfyume/app-r2-hourly.keys)
#   --log FILE         every run's log, backup-mello.sh's included (default
#                      ${COMFYUME_ROOT}/var/log/comfyume/app-r2-hourly.log); the last result is in
#                      ${COMFYUME_ROOT}/var/lib/comfyume/app-r2-hourly.status
#   --help
# Options after `--` go to backup-mello.sh (--r2-endpoint, --data-dir, --dirs, --bucket, --prefix, ...).
# Secrets: on install's stdin only; kept for cron in the keys file (cron has no stdin), which reaches
# backup-mello.sh on its stdin: never a command line, the cron file or the environment.
#
# No overlap: a run holds the lock backup-mello.sh takes (${COMFYUME_ROOT}/run/lock/comfyume-backup-mello.lock),
# so an hourly run never runs beside another one or the nightly backup. An hourly run that finds it held fails
# at once, naming the holder (logged; the next hour tries again); the nightly waits for an hourly run
# (backup-mello.sh --lock-wait).
# Exit codes: 0 installed / backed up and verified; 1 any failure.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/common.sh
source "${here}/../lib/common.sh"

ROOT=${COMFYUME_ROOT:-}
SCHEDULE="30 * * * *"
CRON_FILE=${ROOT}/etc/cron.d/comfyume-app-r2-hourly
KEYS_FILE=${ROOT}/etc/comfyume/app-r2-hourly.keys
RUN_LOG=${ROOT}/var/log/comfyume/app-r2-hourly.log
STATUS_FILE=${ROOT}/var/lib/comfyume/app-r2-hourly.status
MAIN_LOCK=${ROOT}/run/lock/comfyume-backup-mello.lock
PASS_ARGS=()

ACTION=${1:-}
case $ACTION in
  install | run) shift ;;
  -h | --help) print_help "$0"; exit 0 ;;
  *) die "first argument must be 'install' or 'run' (see --help), got '${ACTION}'" ;;
esac
while (($#)); do
  case $1 in
    --schedule) need_value "$@"; SCHEDULE=$2; shift 2 ;;
    --cron-file) need_value "$@"; CRON_FILE=$2; shift 2 ;;
    --keys-file) need_value "$@"; KEYS_FILE=$2; shift 2 ;;
    --log) need_value "$@"; RUN_LOG=$2; shift 2 ;;
    --) shift; PASS_ARGS=("$@"); break ;;
    -h | --help) print_help "$0"; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
log_to_file "$RUN_LOG"

validate_install() {
  local fields
  read -r -a fields <<<"$SCHEDULE"
  [[ ${#fields[@]} == 5 && $SCHEDULE =~ ^[0-9*/,\ -]+$ ]] || die "--schedule '${SCHEDULE}' must be 5 cron fields, e.g. '30 * * * *'"
  [[ $(basename "$CRON_FILE") != *.* ]] || die "--cron-file '${CRON_FILE}': cron ignores /etc/cron.d files whose names contain dots"
  [[ " ${PASS_ARGS[*]} " == *" --r2-endpoint "* ]] || die "no --r2-endpoint among backup-mello.sh's options after '--'"
  read_secrets R2_ACCESS_KEY_ID R2_SECRET_ACCESS_KEY
  [[ -n ${R2_ACCESS_KEY_ID:-} && -n ${R2_SECRET_ACCESS_KEY:-} ]] || die "R2_ACCESS_KEY_ID and R2_SECRET_ACCESS_KEY must come on stdin"
}

# write_keys: the keys file, created 0600 (umask) before a byte is written, replaced by rename.
write_keys() {
  local tmp
  mkdir -p "$(dirname "$KEYS_FILE")"
  tmp=$(umask 077 && mktemp "${KEYS_FILE}.XXXXXX")
  printf 'R2_ACCESS_KEY_ID=%s\nR2_SECRET_ACCESS_KEY=%s\n' "$R2_ACCESS_KEY_ID" "$R2_SECRET_ACCESS_KEY" >"$tmp"
  if [[ -f $KEYS_FILE ]] && cmp -s "$tmp" "$KEYS_FILE" && [[ $(stat -c %a "$KEYS_FILE") == 600 ]]; then
    rm -f "$tmp"
    COMFYUME_STEP_RESULT=unchanged
    return 0
  fi
  mv -f "$tmp" "$KEYS_FILE"
  COMFYUME_STEP_RESULT=changed
}

write_cron() {
  local cmd env_prefix="" tmp
  printf -v cmd '%q ' bash "${here}/app-r2-hourly.sh" run --keys-file "$KEYS_FILE" --log "$RUN_LOG" -- "${PASS_ARGS[@]}"
  [[ -z $ROOT ]] || printf -v env_prefix 'COMFYUME_ROOT=%q ' "$ROOT"
  mkdir -p "$(dirname "$CRON_FILE")"
  tmp=$(mktemp "${CRON_FILE}.XXXXXX")
  {
    printf '# Installed by comfyume-infra app-r2-hourly.sh: the users'"'"' files -> R2, verified, hourly.\n'
    printf '# Log: %s; last result: %s\n' "$RUN_LOG" "$STATUS_FILE"
    printf 'SHELL=/bin/bash\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n'
    # Anything printed before the script's own log starts lands in the same file.
    printf '%s root %s%s>>%q 2>&1\n' "$SCHEDULE" "$env_prefix" "$cmd" "$RUN_LOG"
  } >"$tmp"
  COMFYUME_STEP_RESULT=$(install_cron_file "$tmp" "$CRON_FILE" "${ROOT}/var/backups/comfyume")
  log "cron: ${SCHEDULE} ${cmd}"
}

# record RESULT: the status file the admin (and npm run status) reads.
record() {
  local last_ok=""
  [[ ! -f $STATUS_FILE ]] || last_ok=$(sed -n 's/^last_ok=//p' "$STATUS_FILE")
  [[ $1 != ok ]] || last_ok=$(_ts)
  write_kv_file "$STATUS_FILE" "last_result=$1" "last_run=$(_ts)" "last_ok=${last_ok}" "log=${RUN_LOG}"
}

record_failure() { [[ ${RUN_DONE:-0} == 1 ]] || record failed; }

# pass_opt NAME DEFAULT: the value of backup-mello.sh's option NAME among the passed options.
pass_opt() {
  local i v=$2
  for ((i = 0; i + 1 < ${#PASS_ARGS[@]}; i++)); do [[ ${PASS_ARGS[i]} != "$1" ]] || v=${PASS_ARGS[i + 1]}; done
  printf '%s' "$v"
}

# choose_sets: SETS = --dirs without those that hold no file AND have no backup in R2 yet (a fresh app host
# before its users saved anything: nothing to protect, and backup-mello.sh refuses an empty set). A set
# that has a backup stays, so an emptied or missing directory still fails there (its shrink check).
choose_sets() {
  local data dirs bucket prefix d keep=()
  data=$(pass_opt --data-dir "${ROOT}/home/dev/comfyume/data")
  dirs=$(pass_opt --dirs user_data,outputs,inputs)
  bucket=$(pass_opt --bucket comfyume-user-files-backups)
  prefix=$(pass_opt --prefix mello)
  R2_ENDPOINT=$(pass_opt --r2-endpoint "")
  read_secrets R2_ACCESS_KEY_ID R2_SECRET_ACCESS_KEY <"$KEYS_FILE"
  r2_setup
  for d in ${dirs//,/ }; do
    if [[ -n $(find "${data}/${d}" -type f -print -quit 2>/dev/null) ]] || r2_latest_manifest "$bucket" "${prefix}/${d}" >/dev/null; then
      keep+=("$d")
    else
      log "set ${prefix}/${d}: no files under ${data}/${d} and no backup in r2:${bucket} yet: nothing to back up"
    fi
  done
  SETS=$(IFS=,; printf '%s' "${keep[*]}")
}

run_backup() {
  [[ -f $KEYS_FILE ]] || die "the R2 keys file ${KEYS_FILE} is missing: re-run 'app-r2-hourly.sh install' with the keys on stdin (the month's 'up' does it)"
  [[ $(stat -c %a "$KEYS_FILE") == 600 ]] || die "${KEYS_FILE} is not mode 0600 (it holds the R2 keys): chmod 600 ${KEYS_FILE}, and check who could read it"
  choose_sets
  if [[ -z $SETS ]]; then
    COMFYUME_STEP_RESULT="nothing to back up yet"
    return 0
  fi
  # backup-mello.sh's own lock is another file: this run holds its usual one for the whole job.
  BACKUP_LOCK="${ROOT}/run/lock/comfyume-app-r2-hourly.inner.lock" bash "${here}/backup-mello.sh" --log "$RUN_LOG" "${PASS_ARGS[@]}" --dirs "$SETS" <"$KEYS_FILE" ||
    die "the hourly copy of the users' files to R2 failed (the cause is named above; the last verified copy in R2 is untouched)"
}

if [[ $ACTION == install ]]; then
  step validate validate_install
  step keys-file write_keys
  step cron-file write_cron
else
  on_exit record_failure
  take_lock "$MAIN_LOCK"
  step backup run_backup
  record ok
  RUN_DONE=1
fi
step_summary
