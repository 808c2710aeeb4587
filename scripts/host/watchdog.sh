#!/usr/bin/env bash
# watchdog.sh: on mello, tear down a forgotten workshop day (the GPU instance bills by the hour).
#
# Usage: watchdog.sh [options]     (normally every few minutes from comfyume-watchdog.timer)
#
#   --cutoff HH:MM        end of the workshop day (env WATCHDOG_CUTOFF; default 22:00)
#   --morning HH:MM       end of the cutoff window, so a stack forgotten past midnight is
#                         still caught (env WATCHDOG_MORNING; default 06:00)
#   --timezone TZ         zone of both times (env WATCHDOG_TZ; default UTC)
#   --idle-minutes N      also tear down when the worker queue has been empty for N minutes
#                         (env WATCHDOG_IDLE_MINUTES; default 180; 0 = off)
#   --grace-minutes N     at the cutoff, wait up to N minutes for a busy queue to drain
#                         (env WATCHDOG_GRACE_MINUTES; default 30)
#   --queue-key KEY       Redis list of waiting jobs (env WATCHDOG_QUEUE_KEY; default comfyume:queue)
#   --queue-cmd CMD       prints the queue length (env WATCHDOG_QUEUE_CMD; default
#                         redis-cli -h $REDIS_HOST -p $REDIS_PORT LLEN <key>; password: REDISCLI_AUTH)
#   --active-cmd CMD      prints something non-empty while the day stack has an instance (env
#                         WATCHDOG_ACTIVE_CMD; default scripts/pulumi stack output <output> --stack <day>)
#   --active-output NAME  the day stack output that exists while it bills (env WATCHDOG_ACTIVE_OUTPUT;
#                         default instanceId; serverlessDeployments for inference = serverless, whose
#                         teardown returns the deployments to zero replicas)
#   --teardown-cmd CMD    the verified end-of-day teardown (env WATCHDOG_TEARDOWN_CMD; default
#                         COMFYUME_PULUMI_COMMAND=destroy scripts/pulumi destroy --stack <day> --run-program
#                         --yes --non-interactive)
#   --day-stack NAME      (env WATCHDOG_DAY_STACK; default workshop-day)
#   --workdir DIR         checkout the commands run in (env WATCHDOG_WORKDIR; default /opt/comfyume-infra)
#   --webhook URL         notifications: POST with curl, ntfy style (env WATCHDOG_WEBHOOK_URL; optional)
#   --retry-minutes N     after a failed teardown, wait N minutes before trying again
#                         (env WATCHDOG_RETRY_MINUTES; default 30)
#   --teardown-timeout S  (env WATCHDOG_TEARDOWN_TIMEOUT; default 7200 seconds)
#   --env-file FILE       read KEY=value settings first (the installed timer passes them instead)
#   --state-dir DIR       (env WATCHDOG_STATE_DIR; default ${COMFYUME_ROOT}/var/lib/comfyume/watchdog)
#   --log FILE            (env WATCHDOG_LOG; default ${COMFYUME_ROOT}/var/log/comfyume/watchdog.log)
#   --help
#
# Each run: nothing to do unless the day stack has an instance; inside the cutoff window (or
# after the idle time) it runs the teardown command, which backs up and verifies before it
# deletes anything. The watchdog never deletes anything itself: when the teardown fails (the
# backup failed), the instance is kept, "backup failed, instance kept" is sent to the webhook
# and the exit code is 1. Idempotent: once the stack is down, later runs do nothing. A state
# check that fails for any other reason than "no such stack/output" is notified and exits 1
# (never read as "nothing up").
# WATCHDOG_NOW (epoch seconds) fixes the clock for tests.
#
# Exit codes: 0 nothing to do, or torn down and verified; 1 teardown failed or not verified.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/common.sh
source "${here}/../lib/common.sh"

# --env-file is read before anything else so flags still win over it.
for ((i = 1; i <= $#; i++)); do
  if [[ ${!i} == --env-file ]]; then
    j=$((i + 1))
    [[ -r ${!j:-} ]] || die "--env-file ${!j:-}: not readable"
    set -a
    # shellcheck source=/dev/null
    source "${!j}"
    set +a
  fi
done

ROOT=${COMFYUME_ROOT:-}
CUTOFF=${WATCHDOG_CUTOFF:-22:00}
MORNING=${WATCHDOG_MORNING:-06:00}
TZ_NAME=${WATCHDOG_TZ:-UTC}
IDLE_MINUTES=${WATCHDOG_IDLE_MINUTES:-180}
GRACE_MINUTES=${WATCHDOG_GRACE_MINUTES:-30}
QUEUE_KEY=${WATCHDOG_QUEUE_KEY:-comfyume:queue}
QUEUE_CMD=${WATCHDOG_QUEUE_CMD:-}
DAY_STACK=${WATCHDOG_DAY_STACK:-workshop-day}
ACTIVE_CMD=${WATCHDOG_ACTIVE_CMD:-}
ACTIVE_OUTPUT=${WATCHDOG_ACTIVE_OUTPUT:-instanceId}
TEARDOWN_CMD=${WATCHDOG_TEARDOWN_CMD:-}
WORKDIR=${WATCHDOG_WORKDIR:-/opt/comfyume-infra}
WEBHOOK_URL=${WATCHDOG_WEBHOOK_URL:-}
RETRY_MINUTES=${WATCHDOG_RETRY_MINUTES:-30}
TEARDOWN_TIMEOUT=${WATCHDOG_TEARDOWN_TIMEOUT:-7200}
STATE_DIR=${WATCHDOG_STATE_DIR:-${ROOT}/var/lib/comfyume/watchdog}
WATCHDOG_LOG=${WATCHDOG_LOG:-${ROOT}/var/log/comfyume/watchdog.log}

while (($#)); do
  case $1 in
    --cutoff) need_value "$@"; CUTOFF=$2; shift 2 ;;
    --morning) need_value "$@"; MORNING=$2; shift 2 ;;
    --timezone) need_value "$@"; TZ_NAME=$2; shift 2 ;;
    --idle-minutes) need_value "$@"; IDLE_MINUTES=$2; shift 2 ;;
    --grace-minutes) need_value "$@"; GRACE_MINUTES=$2; shift 2 ;;
    --queue-key) need_value "$@"; QUEUE_KEY=$2; shift 2 ;;
    --queue-cmd) need_value "$@"; QUEUE_CMD=$2; shift 2 ;;
    --active-cmd) need_value "$@"; ACTIVE_CMD=$2; shift 2 ;;
    --active-output) need_value "$@"; ACTIVE_OUTPUT=$2; shift 2 ;;
    --teardown-cmd) need_value "$@"; TEARDOWN_CMD=$2; shift 2 ;;
    --day-stack) need_value "$@"; DAY_STACK=$2; shift 2 ;;
    --workdir) need_value "$@"; WORKDIR=$2; shift 2 ;;
    --webhook) need_value "$@"; WEBHOOK_URL=$2; shift 2 ;;
    --retry-minutes) need_value "$@"; RETRY_MINUTES=$2; shift 2 ;;
    --teardown-timeout) need_value "$@"; TEARDOWN_TIMEOUT=$2; shift 2 ;;
    --env-file) need_value "$@"; shift 2 ;;
    --state-dir) need_value "$@"; STATE_DIR=$2; shift 2 ;;
    --log) need_value "$@"; WATCHDOG_LOG=$2; shift 2 ;;
    -h | --help) print_help "$0"; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done

QUEUE_CMD=${QUEUE_CMD:-redis-cli -h ${REDIS_HOST:-127.0.0.1} -p ${REDIS_PORT:-6379} LLEN ${QUEUE_KEY}}
[[ $ACTIVE_OUTPUT =~ ^[A-Za-z][A-Za-z0-9]*$ ]] || die "--active-output '${ACTIVE_OUTPUT}' must be a stack output name such as instanceId or serverlessDeployments"
ACTIVE_CMD=${ACTIVE_CMD:-scripts/pulumi stack output ${ACTIVE_OUTPUT} --stack ${DAY_STACK} --non-interactive}
# COMFYUME_PULUMI_COMMAND tells the program's money gate it is a destroy (never blocked by a budget).
TEARDOWN_CMD=${TEARDOWN_CMD:-COMFYUME_PULUMI_COMMAND=destroy scripts/pulumi destroy --stack ${DAY_STACK} --run-program --yes --non-interactive}
export TZ=$TZ_NAME

validate() {
  local t n
  for t in "$CUTOFF" "$MORNING"; do
    [[ $t =~ ^([01][0-9]|2[0-3]):[0-5][0-9]$ ]] || die "time '${t}' must be HH:MM (24 h), e.g. 22:00"
  done
  for n in "$IDLE_MINUTES" "$GRACE_MINUTES" "$RETRY_MINUTES" "$TEARDOWN_TIMEOUT"; do
    [[ $n =~ ^[0-9]+$ ]] || die "'${n}' must be a whole number (minutes/seconds)"
  done
  [[ -d $WORKDIR ]] || die "workdir ${WORKDIR} does not exist: point --workdir (WATCHDOG_WORKDIR) at the comfyume-infra checkout on mello"
  date -d "@0" +%H:%M >/dev/null || die "timezone '${TZ_NAME}' is not usable by date"
}

# minutes_of_day EPOCH: minutes since local midnight in the configured zone.
minutes_of_day() {
  local hm
  hm=$(date -d "@$1" +%H:%M)
  echo $((10#${hm%%:*} * 60 + 10#${hm##*:}))
}

hm_to_minutes() { echo $((10#${1%%:*} * 60 + 10#${1##*:})); }

# minutes_since_cutoff EPOCH: minutes after the cutoff inside the cutoff window, else -1.
minutes_since_cutoff() {
  local now cut morning
  now=$(minutes_of_day "$1")
  cut=$(hm_to_minutes "$CUTOFF")
  morning=$(hm_to_minutes "$MORNING")
  if ((cut > morning)); then
    # Window over midnight, e.g. 22:00 -> 06:00.
    if ((now >= cut)); then echo $((now - cut)); elif ((now < morning)); then echo $((now + 1440 - cut)); else echo -1; fi
  else
    if ((now >= cut && now < morning)); then echo $((now - cut)); else echo -1; fi
  fi
}

# notify PRIORITY MESSAGE: log it, and POST it to the webhook (ntfy headers) when one is set.
notify() {
  local priority=$1 message=$2
  log "NOTIFY (${priority}): ${message}"
  [[ -n $WEBHOOK_URL ]] || return 0
  if ! curl -fsS -m 15 --retry 2 -X POST -H "Title: comfyume watchdog (${DAY_STACK})" -H "Priority: ${priority}" \
    -H "Tags: $([[ $priority == high ]] && echo warning || echo white_check_mark)" --data-binary "$message" "$WEBHOOK_URL" >/dev/null 2>&1; then
    warn "could not reach the webhook; the message is only in ${WATCHDOG_LOG}"
  fi
}

# in_workdir CMD-STRING: run a configured command line in the checkout.
in_workdir() { (cd "$WORKDIR" && bash -c "$1"); }

# probe_stack sets STACK_STATE: "up" (the stack has an instance), "down" (no stack, or no
# instanceId output), or "unknown" (the command failed otherwise: state backend unreachable,
# passphrase missing, ...). Unknown is never read as down: a forgotten instance must not hide
# behind a broken check.
probe_stack() {
  local out err rc=0
  err=$(mktemp)
  out=$(in_workdir "$ACTIVE_CMD" 2>"$err") || rc=$?
  STACK_PROBE_ERROR=$(tail -n 3 "$err")
  rm -f "$err"
  if ((rc == 0)); then
    if [[ -n ${out//[[:space:]\"]/} && $out != null ]]; then STACK_STATE=up; else STACK_STATE=down; fi
  elif [[ $STACK_PROBE_ERROR == *"does not have output property"* || $STACK_PROBE_ERROR == *"no stack named"* ]]; then
    STACK_STATE=down
  else
    STACK_STATE=unknown
  fi
}

check_active() {
  probe_stack
  case $STACK_STATE in
    up) ;;
    down)
      rm -f "${STATE_DIR}/idle-since" "${STATE_DIR}/last-failure"
      COMFYUME_STEP_RESULT="no instance"
      ;;
    *)
      notify high "watchdog cannot tell whether ${DAY_STACK} is up (${ACTIVE_CMD} failed: $(tail -n 1 <<<"$STACK_PROBE_ERROR")); a forgotten instance may be billing. Check mello."
      die "cannot read the state of ${DAY_STACK}"
      ;;
  esac
}

# Sets QUEUE_LENGTH (a number, or "unknown") and keeps ${STATE_DIR}/idle-since up to date.
read_queue() {
  local out
  if out=$(in_workdir "$QUEUE_CMD" 2>/dev/null) && [[ ${out//[[:space:]]/} =~ ^[0-9]+$ ]]; then
    QUEUE_LENGTH=${out//[[:space:]]/}
  else
    QUEUE_LENGTH=unknown
    warn "cannot read the queue length (${QUEUE_CMD}); the idle rule waits, the cutoff still applies"
  fi
  if [[ $QUEUE_LENGTH == 0 ]]; then
    [[ -f ${STATE_DIR}/idle-since ]] || printf '%s\n' "$NOW" >"${STATE_DIR}/idle-since"
  else
    rm -f "${STATE_DIR}/idle-since"
  fi
  COMFYUME_STEP_RESULT="queue ${QUEUE_LENGTH}"
}

# Sets REASON when it is time to tear down; empty otherwise.
decide() {
  local since idle_for=0
  REASON=""
  since=$(minutes_since_cutoff "$NOW")
  [[ -f ${STATE_DIR}/idle-since ]] && idle_for=$(((NOW - $(<"${STATE_DIR}/idle-since")) / 60))
  if ((since >= 0)); then
    if [[ $QUEUE_LENGTH =~ ^[0-9]+$ ]] && ((QUEUE_LENGTH > 0 && since < GRACE_MINUTES)); then
      log "past the ${CUTOFF} cutoff but ${QUEUE_LENGTH} job(s) wait; giving them until $((GRACE_MINUTES - since)) more minute(s)"
    else
      REASON="the ${CUTOFF} cutoff (${TZ_NAME}) has passed"
    fi
  elif ((IDLE_MINUTES > 0 && idle_for >= IDLE_MINUTES)); then
    REASON="the queue has been empty for ${idle_for} minutes"
  else
    log "before the ${CUTOFF} cutoff, queue ${QUEUE_LENGTH}, empty for ${idle_for} min: nothing to do"
  fi
  COMFYUME_STEP_RESULT=${REASON:-wait}
}

teardown() {
  local rc=0
  log "tearing down ${DAY_STACK}: ${REASON}; running: ${TEARDOWN_CMD}"
  (cd "$WORKDIR" && timeout "$TEARDOWN_TIMEOUT" bash -c "$TEARDOWN_CMD") >>"$WATCHDOG_LOG" 2>&1 || rc=$?
  if ((rc != 0)); then
    printf '%s\n' "$NOW" >"${STATE_DIR}/last-failure"
    notify high "backup failed, instance kept: the ${DAY_STACK} teardown exited ${rc} (${REASON}); the instance is still up and billing. See ${WATCHDOG_LOG} on mello."
    die "teardown exited ${rc}; instance kept"
  fi
}

verify() {
  probe_stack
  if [[ $STACK_STATE != down ]]; then
    printf '%s\n' "$NOW" >"${STATE_DIR}/last-failure"
    notify high "teardown of ${DAY_STACK} reported success but the stack still has an instance; it is still billing. See ${WATCHDOG_LOG} on mello."
    die "the stack still has an instance after the teardown"
  fi
  rm -f "${STATE_DIR}/idle-since" "${STATE_DIR}/last-failure"
  notify default "${DAY_STACK} torn down: ${REASON}. Backed up and verified before the instance was deleted."
}

log_to_file "$WATCHDOG_LOG"
take_lock "${ROOT}/run/lock/comfyume-watchdog.lock"
mkdir -p "$STATE_DIR"
NOW=${WATCHDOG_NOW:-$(date +%s)}
step validate validate
step active check_active
if [[ $STACK_STATE == down ]]; then
  log "${DAY_STACK} has no instance: nothing to do"
  exit 0
fi
step queue read_queue
step decide decide
[[ -n $REASON ]] || exit 0
if [[ -f ${STATE_DIR}/last-failure ]] && ((NOW - $(<"${STATE_DIR}/last-failure") < RETRY_MINUTES * 60)); then
  die "the last teardown failed at $(date -d "@$(<"${STATE_DIR}/last-failure")" +%H:%M); the next try is ${RETRY_MINUTES} minutes after it (instance kept, still billing)"
fi
step teardown teardown
step verify verify
step_summary
