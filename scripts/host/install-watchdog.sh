#!/usr/bin/env bash
# install-watchdog.sh: install watchdog.sh on mello as a systemd timer (idempotent).
#
# Usage: printf 'REDISCLI_AUTH=...\nWATCHDOG_WEBHOOK_URL=...\n' |
#          install-watchdog.sh [--set KEY=VALUE ...] [options]
#
#   --set KEY=VALUE         a watchdog setting (WATCHDOG_CUTOFF=22:00, WATCHDOG_TZ=Europe/Helsinki,
#                           WATCHDOG_IDLE_MINUTES=180, WATCHDOG_WORKDIR=/opt/comfyume-infra, REDIS_HOST, ...;
#                           see watchdog.sh --help); repeatable
#   --interval-minutes N    how often the timer runs it (env WATCHDOG_INTERVAL; default 5)
#   --install-dir DIR       where the scripts are copied (env INSTALL_DIR; default /usr/local/lib/comfyume)
#   --env-file FILE         settings file read by the service (env WATCHDOG_ENV_FILE;
#                           default ${COMFYUME_ROOT}/etc/comfyume/watchdog.env, mode 0600)
#   --unit-dir DIR          (env UNIT_DIR; default ${COMFYUME_ROOT}/etc/systemd/system)
#   --disable               stop and disable the timer (files are kept)
#   --help
# Secrets, on stdin only (KEY=value lines): REDISCLI_AUTH (Redis password for redis-cli),
# WATCHDOG_WEBHOOK_URL (an ntfy topic URL is as good as a password). Both optional.
#
# Writes comfyume-watchdog.service (oneshot) and comfyume-watchdog.timer, copies scripts/host and
# scripts/lib, and enables the timer. Every file is replaced only when its content changed, and
# systemd is reloaded only then, so a second run with the same settings changes nothing.
# SYSTEMCTL overrides the systemctl command (tests).
#
# Exit codes: 0 installed (or disabled) and verified; 1 any failure.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/common.sh
source "${here}/../lib/common.sh"

ROOT=${COMFYUME_ROOT:-}
INTERVAL=${WATCHDOG_INTERVAL:-5}
INSTALL_DIR=${INSTALL_DIR:-/usr/local/lib/comfyume}
ENV_FILE=${WATCHDOG_ENV_FILE:-${ROOT}/etc/comfyume/watchdog.env}
UNIT_DIR=${UNIT_DIR:-${ROOT}/etc/systemd/system}
SYSTEMCTL=${SYSTEMCTL:-systemctl}
DISABLE=false
SETTINGS=()

while (($#)); do
  case $1 in
    --set) need_value "$@"; SETTINGS+=("$2"); shift 2 ;;
    --interval-minutes) need_value "$@"; INTERVAL=$2; shift 2 ;;
    --install-dir) need_value "$@"; INSTALL_DIR=$2; shift 2 ;;
    --env-file) need_value "$@"; ENV_FILE=$2; shift 2 ;;
    --unit-dir) need_value "$@"; UNIT_DIR=$2; shift 2 ;;
    --disable) DISABLE=true; shift ;;
    -h | --help) print_help "$0"; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done

SERVICE=comfyume-watchdog.service
TIMER=comfyume-watchdog.timer
CHANGED=0

validate() {
  local kv
  if ! [[ $INTERVAL =~ ^[1-9][0-9]*$ ]] || ((INTERVAL > 60)); then die "--interval-minutes '${INTERVAL}' must be 1-60"; fi
  [[ $INSTALL_DIR == /* ]] || die "INSTALL_DIR '${INSTALL_DIR}' must be absolute"
  for kv in "${SETTINGS[@]}"; do
    [[ $kv =~ ^(WATCHDOG_[A-Z_]+|REDIS_HOST|REDIS_PORT|PATH|HOME|VERDA_BASE_URL|PULUMI_[A-Z_]+)= ]] ||
      die "--set '${kv%%=*}': only WATCHDOG_*, REDIS_HOST, REDIS_PORT, PATH, HOME, VERDA_BASE_URL and PULUMI_* settings go here; secrets go on stdin"
    [[ $kv != *"'"* && $kv != *$'\n'* ]] || die "--set ${kv%%=*}: values may not contain single quotes or newlines"
  done
}

# install_file SRC DEST MODE: replace DEST when it differs; counts changes.
install_file() {
  local result
  result=$(replace_if_changed "$1" "$2" "$3")
  if [[ $result == changed ]]; then CHANGED=$((CHANGED + 1)); fi
  # replace_if_changed keeps a .bak beside a replaced file; keep config directories tidy.
  local bak
  for bak in "$2".comfyume-*.bak; do
    [[ -e $bak ]] || continue
    mkdir -p "${ROOT}/var/backups/comfyume"
    mv -f "$bak" "${ROOT}/var/backups/comfyume/"
  done
}

copy_scripts() {
  local src_root dest_root f rel tmp before=$CHANGED
  src_root=$(cd "${here}/.." && pwd)
  dest_root="${ROOT}${INSTALL_DIR}"
  for f in "${src_root}"/host/*.sh "${src_root}"/lib/*.sh; do
    rel=${f#"${src_root}"/}
    mkdir -p "$(dirname "${dest_root}/${rel}")"
    tmp=$(mktemp "${dest_root}/${rel}.XXXXXX")
    cp "$f" "$tmp"
    install_file "$tmp" "${dest_root}/${rel}" 0755
  done
  COMFYUME_STEP_RESULT=$([[ $CHANGED -gt $before ]] && echo changed || echo unchanged)
}

write_env() {
  local tmp kv before=$CHANGED
  read_secrets REDISCLI_AUTH WATCHDOG_WEBHOOK_URL
  mkdir -p "$(dirname "$ENV_FILE")"
  tmp=$(mktemp "${ENV_FILE}.XXXXXX")
  chmod 0600 "$tmp"
  {
    printf '# Written by comfyume-infra install-watchdog.sh; read by %s. Mode 0600: holds secrets.\n' "$SERVICE"
    [[ -n $ROOT ]] && printf "COMFYUME_ROOT='%s'\n" "$ROOT"
    for kv in "${SETTINGS[@]}"; do printf "%s='%s'\n" "${kv%%=*}" "${kv#*=}"; done
    for kv in "${COMFYUME_SECRET_NAMES[@]}"; do
      [[ ${!kv} != *"'"* ]] || die "secret ${kv} may not contain single quotes"
      printf "%s='%s'\n" "$kv" "${!kv}"
    done
  } >"$tmp"
  install_file "$tmp" "$ENV_FILE" 0600
  COMFYUME_STEP_RESULT=$([[ $CHANGED -gt $before ]] && echo changed || echo unchanged)
}

write_units() {
  local tmp before=$CHANGED
  mkdir -p "$UNIT_DIR"
  tmp=$(mktemp "${UNIT_DIR}/${SERVICE}.XXXXXX")
  cat >"$tmp" <<EOF
# Installed by comfyume-infra install-watchdog.sh.
[Unit]
Description=comfyume watchdog: end-of-day teardown of a forgotten workshop day
After=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
EnvironmentFile=${ENV_FILE}
ExecStart=${INSTALL_DIR}/host/watchdog.sh
EOF
  install_file "$tmp" "${UNIT_DIR}/${SERVICE}" 0644
  tmp=$(mktemp "${UNIT_DIR}/${TIMER}.XXXXXX")
  cat >"$tmp" <<EOF
# Installed by comfyume-infra install-watchdog.sh.
[Unit]
Description=run the comfyume watchdog every ${INTERVAL} minutes

[Timer]
OnCalendar=*:0/${INTERVAL}
Persistent=true

[Install]
WantedBy=timers.target
EOF
  install_file "$tmp" "${UNIT_DIR}/${TIMER}" 0644
  COMFYUME_STEP_RESULT=$([[ $CHANGED -gt $before ]] && echo changed || echo unchanged)
}

enable_timer() {
  if ((CHANGED > 0)); then
    "$SYSTEMCTL" daemon-reload || die "systemctl daemon-reload failed"
  fi
  "$SYSTEMCTL" enable --now "$TIMER" || die "could not enable ${TIMER}"
  COMFYUME_STEP_RESULT=$([[ $CHANGED -gt 0 ]] && echo "reloaded, enabled" || echo enabled)
}

disable_timer() {
  if [[ ! -f ${UNIT_DIR}/${TIMER} ]]; then
    COMFYUME_STEP_RESULT="not installed"
    return 0
  fi
  "$SYSTEMCTL" disable --now "$TIMER" || die "could not disable ${TIMER}"
}

verify() {
  bash -n "${ROOT}${INSTALL_DIR}/host/watchdog.sh" || die "installed watchdog.sh does not parse"
  [[ $(stat -c %a "$ENV_FILE") == 600 ]] || die "${ENV_FILE} must be mode 0600"
  "$SYSTEMCTL" is-enabled --quiet "$TIMER" || die "${TIMER} is not enabled"
  log "timer ${TIMER} every ${INTERVAL} min; settings in ${ENV_FILE}; ${CHANGED} file(s) changed"
}

step validate validate
if [[ $DISABLE == true ]]; then
  step disable disable_timer
  step_summary
  exit 0
fi
step copy-scripts copy_scripts
step env-file write_env
step units write_units
step enable enable_timer
step verify verify
step_summary
