#!/usr/bin/env bash
# start-app.sh: start the workshop app (frontends, Redis, queue manager, admin, nginx) on the app
# host with docker compose, then check that Redis answers where the day's workers will reach it.
#
# Usage: printf 'REDIS_PASSWORD=...\n' | start-app.sh --project-dir DIR --compose-file F [options]
#
#   --project-dir DIR       the app's checkout, restored by restore-instance.sh (env PROJECT_DIR;
#                           default ${COMFYUME_ROOT}/home/dev/comfyume-v1); its .env is passed to compose
#   --compose-file F        compose file relative to the project (repeatable, in order; config
#                           app.composeFiles)
#   --profile P             compose profile to enable (repeatable; config app.composeProfiles)
#   --service S             service to start (repeatable; config app.services)
#   --image-tarball FILE    `docker load` FILE first unless its image is present (repeatable)
#   --redis-host HOST       where the day's workers reach Redis (the tailnet or the instance's address)
#   --redis-port PORT       (default 6379)
#   --health-timeout SECS   how long Redis may take to answer PING (default 300)
#   --check-only            start nothing, load nothing: every service must already run and Redis
#                           answer (an adopted app instance that runs the app today; docs/adopting.md)
#   --help
# Secrets, on stdin only (KEY=value lines): REDIS_PASSWORD.
#
# `docker compose up -d` (never `restart`: only up re-reads .env), then every service must be
# running, then Redis must answer AUTH + PING at --redis-host. A second run changes nothing.
# Environment for tests: COMFYUME_ROOT, DOCKER_CMD (docker).
# Exit codes: 0 started and healthy; 1 any failure.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/common.sh
source "${here}/../lib/common.sh"

ROOT=${COMFYUME_ROOT:-}
PROJECT_DIR=${PROJECT_DIR:-${ROOT}/home/dev/comfyume-v1}
DOCKER_CMD=${DOCKER_CMD:-docker}
REDIS_HOST=""
REDIS_PORT=6379
HEALTH_TIMEOUT=300
COMPOSE_FILES=()
PROFILES=()
SERVICES=()
TARBALLS=()
CHECK_ONLY=0

while (($#)); do
  case $1 in
    --project-dir) need_value "$@"; PROJECT_DIR=$2; shift 2 ;;
    --compose-file) need_value "$@"; COMPOSE_FILES+=("$2"); shift 2 ;;
    --profile) need_value "$@"; PROFILES+=("$2"); shift 2 ;;
    --service) need_value "$@"; SERVICES+=("$2"); shift 2 ;;
    --image-tarball) need_value "$@"; TARBALLS+=("$2"); shift 2 ;;
    --redis-host) need_value "$@"; REDIS_HOST=$2; shift 2 ;;
    --redis-port) need_value "$@"; REDIS_PORT=$2; shift 2 ;;
    --health-timeout) need_value "$@"; HEALTH_TIMEOUT=$2; shift 2 ;;
    --check-only) CHECK_ONLY=1; shift ;;
    -h | --help) print_help "$0"; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done

validate() {
  read_secrets REDIS_PASSWORD
  ((${#COMPOSE_FILES[@]})) || die "no --compose-file given (config app.composeFiles)"
  ((${#SERVICES[@]})) || die "no --service given (config app.services)"
  [[ -n $REDIS_HOST ]] || die "no --redis-host: the address the day's workers reach Redis at (config app.redisReach / app.redisHost)"
  [[ $REDIS_PORT =~ ^[0-9]+$ ]] || die "--redis-port '${REDIS_PORT}' is not a port number"
  [[ $HEALTH_TIMEOUT =~ ^[0-9]+$ ]] || die "--health-timeout '${HEALTH_TIMEOUT}' is not a number of seconds"
  [[ -f ${PROJECT_DIR}/.env ]] || die "${PROJECT_DIR}/.env is missing: restore-instance.sh restores it (step config); check app.projectDir"
  local f
  for f in "${COMPOSE_FILES[@]}"; do
    [[ -f ${PROJECT_DIR}/${f} ]] || die "compose file ${PROJECT_DIR}/${f} is missing (project not restored? check app.composeFiles)"
  done
  require_cmd "$DOCKER_CMD"
}

# compose ARGS...: docker compose with every file, the project's .env and every profile.
compose() {
  local args=() f p
  for f in "${COMPOSE_FILES[@]}"; do args+=(-f "${PROJECT_DIR}/${f}"); done
  for p in "${PROFILES[@]}"; do args+=(--profile "$p"); done
  "$DOCKER_CMD" compose "${args[@]}" --env-file "${PROJECT_DIR}/.env" "$@"
}

load_images() {
  local t id
  COMFYUME_STEP_RESULT=unchanged
  for t in "${TARBALLS[@]}"; do
    [[ -f $t ]] || die "image tarball ${t} is missing (config app.imageTarballs)"
    id=$(tar -xzOf "$t" manifest.json | grep -o '"Config": *"[^"]*"' | head -n 1 | sed 's/.*"\([^"]*\)"$/\1/') || true
    id=${id##*/}
    id=${id%.json}
    if [[ -n $id ]] && "$DOCKER_CMD" image inspect --format '{{.Id}}' "sha256:${id}" >/dev/null 2>&1; then continue; fi
    log "docker load -i ${t}"
    "$DOCKER_CMD" load -i "$t" || die "docker load of ${t} failed"
    COMFYUME_STEP_RESULT=changed
  done
}

not_running() {
  local s missing=()
  for s in "${SERVICES[@]}"; do
    [[ -n $(compose ps -q --status running "$s" 2>/dev/null || true) ]] || missing+=("$s")
  done
  printf '%s' "${missing[*]}"
}

start_services() {
  if [[ -z $(not_running) ]]; then
    COMFYUME_STEP_RESULT=unchanged
    return 0
  fi
  compose up -d "${SERVICES[@]}" || die "docker compose up -d failed"
  local missing
  missing=$(not_running)
  [[ -z $missing ]] || die "not running after docker compose up -d: ${missing}; check: docker compose logs ${missing%% *}"
  COMFYUME_STEP_RESULT=changed
}

# --check-only: the app runs already (adopted); the stack never starts, stops or recreates it.
check_services() {
  local missing
  missing=$(not_running)
  [[ -z $missing ]] || die "not running on this adopted app host: ${missing}; the stack never starts an adopted app: start it yourself (docker compose up -d ${missing}) or correct app.services"
  COMFYUME_STEP_RESULT=unchanged
}

check_redis() {
  local deadline=$(($(date +%s) + HEALTH_TIMEOUT))
  REDIS_ERROR="no connection"
  until redis_ping; do
    (($(date +%s) < deadline)) ||
      die "Redis at ${REDIS_HOST}:${REDIS_PORT} did not answer PING within ${HEALTH_TIMEOUT}s (${REDIS_ERROR}); the day's workers connect there: check REDIS_BIND_IP in ${PROJECT_DIR}/.env and 'docker compose logs redis'"
    sleep 2
  done
  log "Redis at ${REDIS_HOST}:${REDIS_PORT} answers PONG"
}

step validate validate
if ((CHECK_ONLY)); then
  step services check_services
else
  step images load_images
  step services start_services
fi
step health-redis check_redis
step_summary
