#!/usr/bin/env bash
# restore-instance.sh: bring up a fresh Verda instance for a workshop day from the SFS
# cache (R2 as fallback): identity, config, worker image, worker, health checks.
#
# Usage: printf 'TAILSCALE_AUTH_KEY=...\nREDIS_PASSWORD=...\nENV_HF_TOKEN=...\n' |
#          restore-instance.sh --expected-tailscale-ip IP --redis-host MELLO_TS_IP [options]
#
#   --sfs DIR                   SFS mount point (env SFS_MOUNT; default ${COMFYUME_ROOT}/mnt/sfs)
#   --name NAME                 backup set written by backup-instance.sh (env BACKUP_NAME; default verda-worker)
#   --snapshot STAMP            snapshot to restore (env SNAPSHOT; default: the one named in <set>/latest)
#   --project-dir DIR           (env PROJECT_DIR; default ${COMFYUME_ROOT}/home/dev/comfyume)
#   --compose-file FILE         (env COMPOSE_FILE; default <project>/comfyui-worker/docker-compose.yml)
#   --service NAME              compose service of the worker (env WORKER_SERVICE; default worker-1)
#   --worker-image FILE         image tarball (env WORKER_IMAGE_TARBALL; default <sfs>/worker-image.tar.gz)
#   --expected-tailscale-ip IP  the address this node must come up with (env EXPECTED_TAILSCALE_IP)
#   --redis-host HOST           Redis on mello over Tailscale (env REDIS_HOST)
#   --redis-port PORT           (env REDIS_PORT; default 6379)
#   --comfyui-url URL           (env COMFYUI_URL; default http://127.0.0.1:8188/)
#   --health-timeout SECONDS    (env HEALTH_TIMEOUT; default 300)
#   --r2-endpoint URL           R2 endpoint for the fallback when the SFS cache has no
#                               snapshot or no worker tarball (env R2_ENDPOINT; needs the
#                               R2 keys on stdin)
#   --cache-bucket B            (env R2_CACHE_BUCKET; default comfyume-cache-backups)
#   --worker-bucket B           (env R2_WORKER_BUCKET; default comfyume-worker-container-backups)
#   --layout manifest|flat      how those buckets are laid out (env R2_LAYOUT; default manifest; config
#                               comfyume:seed.layout). flat: the workshop's own dated tarballs, read
#                               through seed-flat.sh when no manifest of ours is there: the newest
#                               config/<name>-<YYYY-MM-DD>.tar.gz of each name into <sfs>/cache/config/<name>
#                               and the newest <image>-<YYYY-MM-DD>.tar.gz as the worker tarball, each
#                               checked against the listing's ETag before it is used
#   --worker-image-name NAME    flat: the <image> to take when the worker bucket holds several
#                               (env WORKER_IMAGE_NAME; config comfyume:seed.workerImageName)
#   --state-dir DIR             the backups' hash state, seeded with every file fetched from R2
#                               (env STATE_DIR; default <sfs>/.comfyume/backup-state, as backup-to-r2.sh)
#   --skip STEP                 leave out a step: tailscale, ssh-host-keys, project, config,
#                               worker-image, worker, health-comfyui, health-redis (repeatable)
#   --help
# Secrets, on stdin only (KEY=value lines): TAILSCALE_AUTH_KEY, REDIS_PASSWORD,
# R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY, and ENV_<KEY>=value to set <KEY> in the project .env.
#
# Order: snapshot (checksums verified) -> Tailscale identity restored while tailscaled is
# stopped -> tailscale up (auth key passed as a 0600 file, never in argv) and the expected
# IP checked -> SSH host keys -> project -> .env (mode 0600) -> `docker load` of the worker
# tarball unless that image id is present -> `docker compose up -d` -> ComfyUI answers HTTP
# -> Redis answers PING. Each step compares before it acts, so a second run changes nothing;
# replaced files are first saved under ${COMFYUME_ROOT}/var/backups/comfyume/.
# A summary table shows each step's time and result (changed/unchanged/skipped).
#
# Environment: TAILSCALED_UNIT (tailscaled), SSH_UNIT (ssh), RESTORE_LOG
# (${COMFYUME_ROOT}/var/log/comfyume/restore-instance.log); for tests COMFYUME_ROOT,
# SYSTEMCTL_CMD, TAILSCALE_CMD, DOCKER_CMD, CURL_CMD.
# Exit codes: 0 restored and healthy; 1 any failure.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/common.sh
source "${here}/../lib/common.sh"

ROOT=${COMFYUME_ROOT:-}
SFS_MOUNT=${SFS_MOUNT:-${ROOT}/mnt/sfs}
BACKUP_NAME=${BACKUP_NAME:-verda-worker}
SNAPSHOT=${SNAPSHOT:-}
PROJECT_DIR=${PROJECT_DIR:-${ROOT}/home/dev/comfyume}
COMPOSE_FILE=${COMPOSE_FILE:-}
WORKER_SERVICE=${WORKER_SERVICE:-worker-1}
WORKER_IMAGE_TARBALL=${WORKER_IMAGE_TARBALL:-}
EXPECTED_TAILSCALE_IP=${EXPECTED_TAILSCALE_IP:-}
REDIS_HOST=${REDIS_HOST:-}
REDIS_PORT=${REDIS_PORT:-6379}
COMFYUI_URL=${COMFYUI_URL:-http://127.0.0.1:8188/}
HEALTH_TIMEOUT=${HEALTH_TIMEOUT:-300}
R2_ENDPOINT=${R2_ENDPOINT:-}
R2_CACHE_BUCKET=${R2_CACHE_BUCKET:-comfyume-cache-backups}
R2_WORKER_BUCKET=${R2_WORKER_BUCKET:-comfyume-worker-container-backups}
R2_LAYOUT=${R2_LAYOUT:-manifest}
WORKER_IMAGE_NAME=${WORKER_IMAGE_NAME:-}
STATE_DIR=${STATE_DIR:-}
RESTORE_LOG=${RESTORE_LOG:-${ROOT}/var/log/comfyume/restore-instance.log}
SYSTEMCTL_CMD=${SYSTEMCTL_CMD:-systemctl}
TAILSCALE_CMD=${TAILSCALE_CMD:-tailscale}
DOCKER_CMD=${DOCKER_CMD:-docker}
CURL_CMD=${CURL_CMD:-curl}
TAILSCALED_UNIT=${TAILSCALED_UNIT:-tailscaled}
# Ubuntu 24.04 calls the unit "ssh"; restarting "sshd" fails there.
SSH_UNIT=${SSH_UNIT:-ssh}
SKIP=" "

while (($#)); do
  case $1 in
    --sfs) need_value "$@"; SFS_MOUNT=$2; shift 2 ;;
    --name) need_value "$@"; BACKUP_NAME=$2; shift 2 ;;
    --snapshot) need_value "$@"; SNAPSHOT=$2; shift 2 ;;
    --project-dir) need_value "$@"; PROJECT_DIR=$2; shift 2 ;;
    --compose-file) need_value "$@"; COMPOSE_FILE=$2; shift 2 ;;
    --service) need_value "$@"; WORKER_SERVICE=$2; shift 2 ;;
    --worker-image) need_value "$@"; WORKER_IMAGE_TARBALL=$2; shift 2 ;;
    --expected-tailscale-ip) need_value "$@"; EXPECTED_TAILSCALE_IP=$2; shift 2 ;;
    --redis-host) need_value "$@"; REDIS_HOST=$2; shift 2 ;;
    --redis-port) need_value "$@"; REDIS_PORT=$2; shift 2 ;;
    --comfyui-url) need_value "$@"; COMFYUI_URL=$2; shift 2 ;;
    --health-timeout) need_value "$@"; HEALTH_TIMEOUT=$2; shift 2 ;;
    --r2-endpoint) need_value "$@"; R2_ENDPOINT=$2; shift 2 ;;
    --cache-bucket) need_value "$@"; R2_CACHE_BUCKET=$2; shift 2 ;;
    --worker-bucket) need_value "$@"; R2_WORKER_BUCKET=$2; shift 2 ;;
    --layout) need_value "$@"; R2_LAYOUT=$2; shift 2 ;;
    --worker-image-name) need_value "$@"; WORKER_IMAGE_NAME=$2; shift 2 ;;
    --state-dir) need_value "$@"; STATE_DIR=$2; shift 2 ;;
    --skip) need_value "$@"; SKIP+="$2 "; shift 2 ;;
    -h | --help) print_help "$0"; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
COMPOSE_FILE=${COMPOSE_FILE:-${PROJECT_DIR}/comfyui-worker/docker-compose.yml}
WORKER_IMAGE_TARBALL=${WORKER_IMAGE_TARBALL:-${SFS_MOUNT}/worker-image.tar.gz}
STATE_DIR=${STATE_DIR:-${SFS_MOUNT}/.comfyume/backup-state}
log_to_file "$RESTORE_LOG"
FLAT_LOG="$(dirname "$RESTORE_LOG")/restore-instance.flat.log"

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
SAVE_DIR="${ROOT}/var/backups/comfyume/restore-${STAMP}"
WORK=$(mktemp -d)
cleanup_work() { rm -rf -- "$WORK"; }
on_exit cleanup_work
SNAP_DIR=""
CHANGES=0

enabled() { [[ $SKIP != *" $1 "* ]]; }
changed() {
  COMFYUME_STEP_RESULT=changed
  CHANGES=$((CHANGES + 1))
}

# run_skippable NAME FN: run FN unless NAME is in --skip.
run_skippable() {
  if enabled "$1"; then
    "$2"
  else
    COMFYUME_STEP_RESULT=skipped
  fi
}

validate() {
  read_secrets TAILSCALE_AUTH_KEY REDIS_PASSWORD R2_ACCESS_KEY_ID R2_SECRET_ACCESS_KEY 'ENV_*'
  local s
  for s in $SKIP; do
    case $s in tailscale | ssh-host-keys | project | config | worker-image | worker | health-comfyui | health-redis) ;;
      *) die "unknown step '${s}' in --skip" ;;
    esac
  done
  if enabled tailscale; then
    [[ $EXPECTED_TAILSCALE_IP =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] ||
      die "EXPECTED_TAILSCALE_IP '${EXPECTED_TAILSCALE_IP}' is not an IPv4 address: pass --expected-tailscale-ip (this node's tailnet address) or --skip tailscale"
    require_cmd "$SYSTEMCTL_CMD" "$TAILSCALE_CMD"
  fi
  if enabled health-redis; then
    [[ -n $REDIS_HOST ]] || die "REDIS_HOST is empty: pass --redis-host <mello-tailscale-ip> or --skip health-redis"
    [[ $REDIS_PORT =~ ^[0-9]+$ ]] || die "REDIS_PORT '${REDIS_PORT}' is not a port number"
  fi
  [[ $HEALTH_TIMEOUT =~ ^[0-9]+$ ]] || die "HEALTH_TIMEOUT '${HEALTH_TIMEOUT}' is not a number of seconds"
  [[ $R2_LAYOUT == manifest || $R2_LAYOUT == flat ]] ||
    die "--layout '${R2_LAYOUT}' is neither 'manifest' nor 'flat': set comfyume:seed.layout to manifest (our backups) or flat (the workshop's dated tarballs)"
  if enabled worker-image || enabled worker; then require_cmd "$DOCKER_CMD"; fi
  require_cmd tar gzip sha256sum diff jq
}

# snapshot_needed: true when a step that restores from the instance snapshot is enabled.
snapshot_needed() { enabled tailscale || enabled ssh-host-keys || enabled project || enabled config; }

# fetch_cache_manifest: the SFS cache from our newest cache manifest in R2; 1 when R2 holds none.
fetch_cache_manifest() {
  local mkey
  log "no snapshot in the SFS cache (${SFS_MOUNT}/cache/backups/${BACKUP_NAME}); fetching the cache from R2"
  r2_setup
  mkey=$(r2_latest_manifest "$R2_CACHE_BUCKET" cache) || return 1
  r2_restore_tree "$R2_CACHE_BUCKET" "$mkey" "${SFS_MOUNT}/cache"
  hash_state_seed "$(hash_state_file "$STATE_DIR" "$R2_CACHE_BUCKET" cache)" "${SFS_MOUNT}/cache" "$R2_RESTORED_MANIFEST" ||
    warn "could not seed the hash state (the next backup reads these files once)"
  rm -f "$R2_RESTORED_MANIFEST"
  changed
}

# fetch_flat SET: the newest dated tarball(s) of SET (cache or worker) from the workshop's flat buckets,
# through seed-flat.sh: the same listing, ETag check (multipart ETags computed locally) and kept record
# (<sfs>/.comfyume/flat-SET.tsv) as the month's flat seed. The keys go to it on stdin. It logs to its own
# file (FLAT_LOG): the day's restore report reads this log's one step table.
fetch_flat() {
  local set=$1 args why
  r2_setup
  args=(--r2-endpoint "$R2_ENDPOINT" --sfs "$SFS_MOUNT" --only "$set" --log "$FLAT_LOG"
    --cache-bucket "$R2_CACHE_BUCKET" --worker-bucket "$R2_WORKER_BUCKET" --worker-image "$WORKER_IMAGE_TARBALL")
  [[ -z $WORKER_IMAGE_NAME ]] || args+=(--worker-image-name "$WORKER_IMAGE_NAME")
  log "seed-flat.sh --only ${set}: its log is ${FLAT_LOG}"
  if ! printf 'R2_ACCESS_KEY_ID=%s\nR2_SECRET_ACCESS_KEY=%s\n' "$R2_ACCESS_KEY_ID" "$R2_SECRET_ACCESS_KEY" |
    bash "${here}/seed-flat.sh" "${args[@]}"; then
    why=$(grep -o "FAILED in step '[^']*': .*" "$FLAT_LOG" 2>/dev/null | tail -n 1 || true)
    die "restoring the ${set} set from the flat bucket failed (${why#*: }; each bad object is named in ${FLAT_LOG}); nothing unverified was used"
  fi
}

locate_snapshot() {
  local set_dir="${SFS_MOUNT}/cache/backups/${BACKUP_NAME}"
  if [[ -z $SNAPSHOT && ! -f ${set_dir}/latest && -n $R2_ENDPOINT ]]; then
    if [[ $R2_LAYOUT == manifest ]]; then
      fetch_cache_manifest || die "R2 bucket ${R2_CACHE_BUCKET} holds no cache manifest either; nothing to restore from"
    elif snapshot_needed && fetch_cache_manifest; then
      : # our own nightly backup of this SFS's cache, written into their bucket: it holds the snapshot
    elif [[ ! -f ${SFS_MOUNT}/.comfyume/flat-cache.tsv ]]; then
      log "restoring the newest dated config tarballs from the flat bucket r2:${R2_CACHE_BUCKET} into ${SFS_MOUNT}/cache/config"
      fetch_flat cache
      changed
    fi
  fi
  if [[ -z $SNAPSHOT && ! -f ${set_dir}/latest ]]; then
    if ! snapshot_needed; then
      log "no instance snapshot in ${set_dir}; none is needed (tailscale, ssh-host-keys, project and config are skipped)"
      return 0
    fi
    [[ $R2_LAYOUT != flat || -z $R2_ENDPOINT ]] ||
      die "no instance snapshot at ${set_dir} nor in r2:${R2_CACHE_BUCKET} (a flat bucket: its dated config tarballs are in ${SFS_MOUNT}/cache/config, not a snapshot). The tailscale, ssh-host-keys, project and config steps restore from a snapshot written by backup-instance.sh: run backup-instance.sh --name ${BACKUP_NAME} on the running instance first, or restore this day without them: --skip tailscale --skip ssh-host-keys --skip project --skip config (comfyume:restore.skip)"
  fi
  if [[ -z $SNAPSHOT ]]; then
    [[ -f ${set_dir}/latest ]] || die "no instance backup in the SFS cache at ${set_dir}: run seed-sfs.sh (month start) or pass --r2-endpoint with the R2 keys on stdin"
    SNAPSHOT=$(<"${set_dir}/latest")
  fi
  SNAP_DIR="${set_dir}/${SNAPSHOT}"
  [[ -f ${SNAP_DIR}/MANIFEST.sha256 ]] || die "snapshot ${SNAP_DIR} has no MANIFEST.sha256 (incomplete?); pass --snapshot with an older one"
  (cd "$SNAP_DIR" && sha256sum --quiet -c MANIFEST.sha256) || die "snapshot ${SNAP_DIR} fails its checksums; pass --snapshot with an older one"
  log "restoring from ${SNAP_DIR}"
}

# check_tarball_members TARBALL: refuse members that are absolute or contain '..'. GNU tar
# would strip a leading '/' and skip '..' members on its own (and refuses to write through a
# symlink it just extracted); a snapshot written by backup-instance.sh never has such members,
# so one that does is refused outright, by name.
check_tarball_members() {
  local tarball=$1 names name why
  names=$(tar -tPzf "$tarball" 2>&1) || die "cannot list ${tarball}: ${names}; pass --snapshot with an older one"
  while IFS= read -r name; do
    why=""
    [[ $name != /* ]] || why="absolute path"
    [[ /${name}/ != */../* ]] || why="'..' component"
    [[ -z $why ]] || die "${tarball} holds an unsafe member '${name}' (${why}); refusing to unpack it. Snapshots written by backup-instance.sh never do: pass --snapshot with an older one and check who writes to ${SFS_MOUNT}/cache"
  done <<<"$names"
}

# extract ITEM: unpack <snapshot>/ITEM.tar.gz into $WORK/ITEM and print that path.
extract() {
  local item=$1
  [[ -f ${SNAP_DIR}/${item}.tar.gz ]] || die "${SNAP_DIR}/${item}.tar.gz is missing from the snapshot (use --skip if intended)"
  check_tarball_members "${SNAP_DIR}/${item}.tar.gz"
  mkdir -p "${WORK}/${item}"
  tar --numeric-owner -xzf "${SNAP_DIR}/${item}.tar.gz" -C "${WORK}/${item}" || die "cannot unpack ${SNAP_DIR}/${item}.tar.gz"
  printf '%s\n' "${WORK}/${item}"
}

# tree_differs SRC DEST: true when a file of SRC is missing or different in DEST
# (extra files in DEST do not count: restore never removes what it did not bring).
tree_differs() {
  local out
  out=$(diff -rq --no-dereference "$1" "$2" 2>&1 || true)
  [[ -n $(grep -v -F "Only in ${2}" <<<"$out" | grep . || true) ]]
}

# save_copy PATH: keep the current PATH under SAVE_DIR before it is replaced.
save_copy() {
  [[ -e $1 ]] || return 0
  mkdir -p "${SAVE_DIR}$(dirname "${1#"$ROOT"}")"
  cp -a -- "$1" "${SAVE_DIR}${1#"$ROOT"}"
}

restore_tailscale_identity() {
  local staged dest="${ROOT}/var/lib/tailscale"
  staged=$(extract tailscale)
  if [[ -d $dest ]] && ! tree_differs "${staged}/tailscale" "$dest"; then
    COMFYUME_STEP_RESULT=unchanged
  else
    # tailscaled must not run while its state is replaced, or it writes its fresh identity back.
    "$SYSTEMCTL_CMD" stop "$TAILSCALED_UNIT" || die "cannot stop ${TAILSCALED_UNIT}"
    save_copy "$dest"
    mkdir -p "$dest"
    cp -a -- "${staged}/tailscale/." "$dest/"
    chmod 0700 "$dest"
    changed
  fi
  if ! "$SYSTEMCTL_CMD" is-active --quiet "$TAILSCALED_UNIT"; then
    "$SYSTEMCTL_CMD" start "$TAILSCALED_UNIT" || die "cannot start ${TAILSCALED_UNIT}"
  fi
}

current_tailscale_ip() { "$TAILSCALE_CMD" ip -4 2>/dev/null | head -n 1 || true; }

tailscale_up() {
  local ip keyfile deadline
  ip=$(current_tailscale_ip)
  if [[ $ip == "$EXPECTED_TAILSCALE_IP" ]]; then
    COMFYUME_STEP_RESULT=unchanged
    return 0
  fi
  [[ -n ${TAILSCALE_AUTH_KEY:-} ]] || die "Tailscale is not up as ${EXPECTED_TAILSCALE_IP} (now: ${ip:-down}) and no TAILSCALE_AUTH_KEY came on stdin"
  # The key goes through a private file, never through argv where ps would show it.
  keyfile=$(mktemp "${WORK}/ts-auth.XXXXXX")
  chmod 0600 "$keyfile"
  printf '%s' "$TAILSCALE_AUTH_KEY" >"$keyfile"
  local out
  out=$("$TAILSCALE_CMD" up --auth-key="file:${keyfile}" --ssh=false 2>&1) || {
    rm -f "$keyfile"
    die "tailscale up failed: $(scrub "$out")"
  }
  rm -f "$keyfile"
  deadline=$(($(date +%s) + HEALTH_TIMEOUT))
  while ip=$(current_tailscale_ip); [[ $ip != "$EXPECTED_TAILSCALE_IP" ]]; do
    (($(date +%s) < deadline)) || break
    sleep 1
  done
  [[ $ip == "$EXPECTED_TAILSCALE_IP" ]] ||
    die "Tailscale came up as '${ip:-no address}', expected ${EXPECTED_TAILSCALE_IP}: the identity was not restored or the node was removed from the tailnet; check the snapshot's tailscale.tar.gz and the admin console"
  changed
}

restore_ssh_host_keys() {
  local staged f dest="${ROOT}/etc/ssh" differs=()
  staged=$(extract ssh-host-keys)
  for f in "$staged"/ssh_host_*; do
    [[ -e $f ]] || die "ssh-host-keys.tar.gz holds no ssh_host_* files"
    cmp -s "$f" "${dest}/$(basename "$f")" || differs+=("$(basename "$f")")
  done
  if ((${#differs[@]} == 0)); then
    COMFYUME_STEP_RESULT=unchanged
    return 0
  fi
  mkdir -p "$dest"
  for f in "${differs[@]}"; do
    save_copy "${dest}/${f}"
    cp -p -- "${staged}/${f}" "${dest}/${f}"
  done
  "$SYSTEMCTL_CMD" restart "$SSH_UNIT" || die "cannot restart ${SSH_UNIT} after restoring host keys"
  changed
}

restore_project() {
  local staged
  staged=$(extract project)
  if [[ -d $PROJECT_DIR ]] && ! tree_differs "$staged" "$PROJECT_DIR"; then
    COMFYUME_STEP_RESULT=unchanged
    return 0
  fi
  if [[ -d $PROJECT_DIR ]]; then
    mkdir -p "$SAVE_DIR"
    tar --exclude=./data -C "$PROJECT_DIR" -czf "${SAVE_DIR}/project-before-restore.tar.gz" . ||
      die "cannot save the current project before restoring it"
  fi
  mkdir -p "$PROJECT_DIR"
  cp -a -- "${staged}/." "$PROJECT_DIR/"
  changed
}

# set_env_line FILE KEY VALUE: KEY=VALUE replaces KEY's line (or is appended). Bash builtins
# only: the value is a secret and must not appear in any process's argv (awk -v would).
set_env_line() {
  local file=$1 key=$2 value=$3 line found=0 out
  out=$(mktemp "${WORK}/env.XXXXXX")
  while IFS= read -r line || [[ -n $line ]]; do
    if [[ $line == "${key}="* ]]; then
      printf '%s=%s\n' "$key" "$value"
      found=1
    else
      printf '%s\n' "$line"
    fi
  done <"$file" >"$out"
  ((found)) || printf '%s=%s\n' "$key" "$value" >>"$out"
  mv -f "$out" "$file"
}

restore_config() {
  local staged tmp key value
  staged=$(extract config)
  [[ -f ${staged}/.env ]] || die "config.tar.gz holds no .env"
  tmp=$(mktemp "${WORK}/env.XXXXXX")
  cp "${staged}/.env" "$tmp"
  # ENV_<KEY>=value from stdin sets <KEY> in .env (replacing an existing line).
  while IFS= read -r key; do
    value=${!key}
    key=${key#ENV_}
    set_env_line "$tmp" "$key" "$value"
    log "set ${key} in .env from stdin"
  done < <(printf '%s\n' "${COMFYUME_SECRET_NAMES[@]}" | grep '^ENV_' || true)
  if [[ -f ${PROJECT_DIR}/.env ]] && cmp -s "$tmp" "${PROJECT_DIR}/.env"; then
    COMFYUME_STEP_RESULT=unchanged
    [[ $(stat -c %a "${PROJECT_DIR}/.env") == 600 ]] || chmod 0600 "${PROJECT_DIR}/.env"
    return 0
  fi
  save_copy "${PROJECT_DIR}/.env"
  mkdir -p "$PROJECT_DIR"
  chmod 0600 "$tmp"
  mv -f "$tmp" "${PROJECT_DIR}/.env"
  changed
}

# image_id_of_tarball: the image id recorded in a `docker save` tarball (sidecar file first).
image_id_of_tarball() {
  local id
  if [[ -f ${WORKER_IMAGE_TARBALL}.image-id ]]; then
    id=$(<"${WORKER_IMAGE_TARBALL}.image-id")
  else
    id=$(tar -xzOf "$WORKER_IMAGE_TARBALL" manifest.json 2>/dev/null | jq -r '.[0].Config // empty') ||
      die "cannot read manifest.json from ${WORKER_IMAGE_TARBALL} (not a docker save tarball?)"
    id=${id##*/}
    id=${id%.json}
  fi
  [[ $id =~ ^(sha256:)?[0-9a-f]{64}$ ]] || die "cannot determine the image id of ${WORKER_IMAGE_TARBALL} (got '${id}')"
  printf 'sha256:%s\n' "${id#sha256:}"
}

load_worker_image() {
  if [[ ! -f $WORKER_IMAGE_TARBALL && -n $R2_ENDPOINT ]]; then
    log "no worker tarball at ${WORKER_IMAGE_TARBALL}; fetching it from R2"
    r2_setup
    local mkey
    if mkey=$(r2_latest_manifest "$R2_WORKER_BUCKET" worker); then
      r2_restore_tree "$R2_WORKER_BUCKET" "$mkey" "$(dirname "$WORKER_IMAGE_TARBALL")"
      hash_state_seed "$(hash_state_file "$STATE_DIR" "$R2_WORKER_BUCKET" worker)" "$(dirname "$WORKER_IMAGE_TARBALL")" "$R2_RESTORED_MANIFEST" ||
        warn "could not seed the hash state (the next backup reads these files once)"
      rm -f "$R2_RESTORED_MANIFEST"
    elif [[ $R2_LAYOUT == flat ]]; then
      log "r2:${R2_WORKER_BUCKET} holds no worker manifest of ours; restoring its newest dated image tarball (flat layout)"
      fetch_flat worker
    else
      die "R2 bucket ${R2_WORKER_BUCKET} holds no worker image manifest either"
    fi
  fi
  [[ -f $WORKER_IMAGE_TARBALL ]] || die "worker image tarball ${WORKER_IMAGE_TARBALL} is missing: run seed-sfs.sh, or pass --r2-endpoint (R2 keys on stdin) or --worker-image"
  local id
  id=$(image_id_of_tarball)
  if "$DOCKER_CMD" image inspect --format '{{.Id}}' "$id" >/dev/null 2>&1; then
    log "image ${id} already present; not loading"
    COMFYUME_STEP_RESULT=unchanged
    return 0
  fi
  log "docker load -i ${WORKER_IMAGE_TARBALL} ($(stat -c %s "$WORKER_IMAGE_TARBALL") bytes)"
  "$DOCKER_CMD" load -i "$WORKER_IMAGE_TARBALL" || die "docker load of ${WORKER_IMAGE_TARBALL} failed"
  "$DOCKER_CMD" image inspect --format '{{.Id}}' "$id" >/dev/null 2>&1 || die "after docker load, image ${id} is still not present"
  changed
}

start_worker() {
  [[ -f $COMPOSE_FILE ]] || die "compose file ${COMPOSE_FILE} is missing (project not restored?)"
  local dc=("$DOCKER_CMD" compose -f "$COMPOSE_FILE" --env-file "${PROJECT_DIR}/.env")
  local running
  running=$("${dc[@]}" ps -q --status running "$WORKER_SERVICE" 2>/dev/null || true)
  if [[ -n $running ]] && ((CHANGES == 0)); then
    COMFYUME_STEP_RESULT=unchanged
    return 0
  fi
  # `up -d`, never `restart`: only up re-reads .env and picks up a new image.
  "${dc[@]}" up -d "$WORKER_SERVICE" || die "docker compose up -d ${WORKER_SERVICE} failed"
  running=$("${dc[@]}" ps -q --status running "$WORKER_SERVICE" 2>/dev/null || true)
  [[ -n $running ]] || die "${WORKER_SERVICE} is not running after docker compose up -d"
  changed
}

check_comfyui() {
  local deadline=$(($(date +%s) + HEALTH_TIMEOUT))
  until "$CURL_CMD" -fsS -o /dev/null --max-time 5 "$COMFYUI_URL" 2>/dev/null; do
    (($(date +%s) < deadline)) || die "ComfyUI at ${COMFYUI_URL} did not answer within ${HEALTH_TIMEOUT}s; check: docker compose -f ${COMPOSE_FILE} logs ${WORKER_SERVICE}"
    sleep 2
  done
  log "ComfyUI answers at ${COMFYUI_URL}"
}

check_redis() {
  local deadline=$(($(date +%s) + HEALTH_TIMEOUT))
  REDIS_ERROR="no connection"
  until redis_ping; do
    (($(date +%s) < deadline)) || die "Redis at ${REDIS_HOST}:${REDIS_PORT} did not answer PING within ${HEALTH_TIMEOUT}s (${REDIS_ERROR}); check Tailscale (tailscale ping ${REDIS_HOST}) and REDIS_BIND_IP on mello"
    sleep 2
  done
  log "Redis at ${REDIS_HOST}:${REDIS_PORT} answers PONG"
}

step validate validate
step snapshot locate_snapshot
step tailscale-identity run_skippable tailscale restore_tailscale_identity
step tailscale-up run_skippable tailscale tailscale_up
step ssh-host-keys run_skippable ssh-host-keys restore_ssh_host_keys
step project run_skippable project restore_project
step config-env run_skippable config restore_config
step worker-image run_skippable worker-image load_worker_image
step worker-start run_skippable worker start_worker
step health-comfyui run_skippable health-comfyui check_comfyui
step health-redis run_skippable health-redis check_redis
step_summary
log "restore complete: ${CHANGES} step(s) changed something"
