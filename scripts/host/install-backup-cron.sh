#!/usr/bin/env bash
# install-backup-cron.sh: install backup-instance.sh and its hourly cron entry.
#
# Usage: install-backup-cron.sh [options] [-- BACKUP-INSTANCE-OPTIONS...]
#
#   --schedule "M H D M W"  cron schedule (env BACKUP_SCHEDULE; default "0 * * * *", hourly)
#   --install-dir DIR       where the scripts are copied on the host
#                           (env INSTALL_DIR; default /usr/local/lib/comfyume)
#   --cron-file FILE        default ${COMFYUME_ROOT}/etc/cron.d/comfyume-backup-instance (env CRON_FILE)
#   --cron-log FILE         where cron sends anything printed before the script's own log
#                           starts (env CRON_LOG; default /var/log/comfyume/backup-instance.cron.log)
#   --help
# Options after `--` are passed to backup-instance.sh on every run (e.g. --name, --sfs).
#
# Copies scripts/host and scripts/lib under ${COMFYUME_ROOT}<install-dir> and writes one
# /etc/cron.d file; both only when their content changed (a second run changes nothing).
# With COMFYUME_ROOT set (tests), the cron line carries COMFYUME_ROOT too.
#
# Exit codes: 0 installed and verified; 1 any failure.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/common.sh
source "${here}/../lib/common.sh"

ROOT=${COMFYUME_ROOT:-}
BACKUP_SCHEDULE=${BACKUP_SCHEDULE:-0 * * * *}
INSTALL_DIR=${INSTALL_DIR:-/usr/local/lib/comfyume}
CRON_FILE=${CRON_FILE:-${ROOT}/etc/cron.d/comfyume-backup-instance}
CRON_LOG=${CRON_LOG:-/var/log/comfyume/backup-instance.cron.log}
PASS_ARGS=()

while (($#)); do
  case $1 in
    --schedule) need_value "$@"; BACKUP_SCHEDULE=$2; shift 2 ;;
    --install-dir) need_value "$@"; INSTALL_DIR=$2; shift 2 ;;
    --cron-file) need_value "$@"; CRON_FILE=$2; shift 2 ;;
    --cron-log) need_value "$@"; CRON_LOG=$2; shift 2 ;;
    --) shift; PASS_ARGS=("$@"); break ;;
    -h | --help) print_help "$0"; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done

validate() {
  local fields
  read -r -a fields <<<"$BACKUP_SCHEDULE"
  ((${#fields[@]} == 5)) || die "BACKUP_SCHEDULE '${BACKUP_SCHEDULE}' must have 5 cron fields, e.g. '0 * * * *'"
  [[ $BACKUP_SCHEDULE =~ ^[0-9*/,\ -]+$ ]] || die "BACKUP_SCHEDULE '${BACKUP_SCHEDULE}' holds characters cron fields do not use"
  [[ $INSTALL_DIR == /* ]] || die "INSTALL_DIR '${INSTALL_DIR}' must be absolute"
  # cron ignores /etc/cron.d files whose names contain a dot.
  [[ $(basename "$CRON_FILE") != *.* ]] || die "CRON_FILE '${CRON_FILE}': cron.d file names must not contain dots"
}

# One install + one rename per changed file (each file replaced atomically), nothing forked for an
# unchanged one but cmp: this step sits at the end of every day-up, and per-file mktemp/chmod/dirname
# forks made it ~1 s on a busy host.
copy_scripts() {
  local src_root dest_root changed=0 f dest tmp stamp
  src_root=$(cd "${here}/.." && pwd)
  dest_root="${ROOT}${INSTALL_DIR}"
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
  mkdir -p "${dest_root}/host" "${dest_root}/lib"
  for f in "${src_root}"/host/*.sh "${src_root}"/lib/*.sh; do
    dest=${dest_root}/${f#"${src_root}"/}
    if [[ -f $dest ]]; then
      cmp -s "$f" "$dest" && continue
      cp -p "$dest" "${dest}.comfyume-${stamp}.bak"
    fi
    tmp="${dest}.new.$$"
    install -m 0755 "$f" "$tmp"
    mv -f "$tmp" "$dest"
    changed=$((changed + 1))
  done
  COMFYUME_STEP_RESULT=$([[ $changed -gt 0 ]] && echo "changed (${changed} files)" || echo unchanged)
}

write_cron() {
  local cmd tmp env_prefix=""
  printf -v cmd '%q ' "${INSTALL_DIR}/host/backup-instance.sh" "${PASS_ARGS[@]}"
  [[ -n $ROOT ]] && printf -v env_prefix 'COMFYUME_ROOT=%q ' "$ROOT"
  mkdir -p "$(dirname "$CRON_FILE")"
  tmp=$(mktemp "${CRON_FILE}.XXXXXX")
  {
    printf '# Installed by comfyume-infra install-backup-cron.sh: instance -> SFS cache backup.\n'
    printf '# Status: /var/lib/comfyume/backup-instance.status; log: /var/log/comfyume/backup-instance.log\n'
    printf 'SHELL=/bin/bash\n'
    printf 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n'
    printf '%s root %s%s>>%q 2>&1\n' "$BACKUP_SCHEDULE" "$env_prefix" "$cmd" "${ROOT}${CRON_LOG}"
  } >"$tmp"
  mkdir -p "$(dirname "${ROOT}${CRON_LOG}")"
  COMFYUME_STEP_RESULT=$(install_cron_file "$tmp" "$CRON_FILE" "${ROOT}/var/backups/comfyume")
}

verify() {
  [[ -x "${ROOT}${INSTALL_DIR}/host/backup-instance.sh" ]] || die "backup-instance.sh not installed under ${ROOT}${INSTALL_DIR}"
  bash -n "${ROOT}${INSTALL_DIR}/host/backup-instance.sh" || die "installed backup-instance.sh does not parse"
  local line
  line=$(grep -v -e '^#' -e '^[A-Z_]*=' "$CRON_FILE" | grep -c . || true)
  ((line == 1)) || die "${CRON_FILE} should hold exactly one job line, found ${line}"
  log "cron: $(grep -v -e '^#' -e '^[A-Z_]*=' "$CRON_FILE")"
}

step validate validate
step copy-scripts copy_scripts
step cron-file write_cron
step verify verify
step_summary
