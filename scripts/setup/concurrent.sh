# shellcheck shell=bash
# Concurrent setup steps, for the cold setup's long builds that do not depend on each other
# (the Pulumi CLI, versitygw, actionlint: compiling; the sim image: downloading and unpacking).
#
#   start_step NAME OUT CMD...  runs CMD in the background in its own process group: its stdout goes to
#                               OUT, its stderr to OUT.log and, line by line, to our stderr as "[NAME] ...".
#   await_steps                 waits for every started step. On the first failure it stops the others
#                               (their whole process groups) and dies naming the failed step and its log.
# An exit or signal of the calling script stops every step still running (no orphaned builds).
# Source after scripts/lib/common.sh.

COMFYUME_BG_PIDS=()
COMFYUME_BG_NAMES=()
COMFYUME_BG_OUTS=()
COMFYUME_BG_STARTS=()
COMFYUME_BG_SHOWN=()

start_step() {
  local name=$1 out=$2
  shift 2
  : >"$out"
  : >"${out}.log"
  log "step ${name}: start (in the background; log ${out}.log)"
  # setsid: the step and everything it starts form one process group, stopped as one.
  setsid "$@" >"$out" 2>"${out}.log" </dev/null &
  COMFYUME_BG_PIDS+=("$!")
  COMFYUME_BG_NAMES+=("$name")
  COMFYUME_BG_OUTS+=("$out")
  local started
  _clock started
  COMFYUME_BG_STARTS+=("$started")
  COMFYUME_BG_SHOWN+=(0)
}

# Copies the new part of step I's log to stderr, each line prefixed with the step's name.
_forward_step_log() {
  local i=$1 log="${COMFYUME_BG_OUTS[$1]}.log" size
  size=$(stat -c %s "$log" 2>/dev/null || echo 0)
  ((size > COMFYUME_BG_SHOWN[i])) || return 0
  tail -c "+$((COMFYUME_BG_SHOWN[i] + 1))" "$log" | head -c "$((size - COMFYUME_BG_SHOWN[i]))" |
    sed "s/^/[${COMFYUME_BG_NAMES[i]}] /" >&2 || true
  COMFYUME_BG_SHOWN[i]=$size
}

# Stops every step still running: TERM to its process group, KILL after 10 s.
stop_background_steps() {
  local i pid waited
  for i in "${!COMFYUME_BG_PIDS[@]}"; do
    pid=${COMFYUME_BG_PIDS[i]}
    [[ -n $pid ]] || continue
    kill -TERM -- "-${pid}" 2>/dev/null || true
  done
  for i in "${!COMFYUME_BG_PIDS[@]}"; do
    pid=${COMFYUME_BG_PIDS[i]}
    [[ -n $pid ]] || continue
    for ((waited = 0; waited < 100; waited++)); do
      kill -0 -- "-${pid}" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "-${pid}" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    COMFYUME_BG_PIDS[i]=""
  done
}
on_exit stop_background_steps

# Records step I as finished with status RC; dies (after stopping the others) when RC is not 0.
_finish_step() {
  local i=$1 rc=$2 took now name=${COMFYUME_BG_NAMES[$1]}
  COMFYUME_BG_PIDS[i]=""
  _forward_step_log "$i"
  _clock now
  _tenths took "$((now - COMFYUME_BG_STARTS[i]))"
  if ((rc == 0)); then
    COMFYUME_STEP_ROWS+=("${name}	${took}	ok (concurrent)")
    log "step ${name}: done in ${took}s"
    return 0
  fi
  COMFYUME_STEP_ROWS+=("${name}	${took}	FAILED")
  log "step ${name}: FAILED after ${took}s (exit ${rc}); stopping the other concurrent steps"
  stop_background_steps
  step_summary
  # shellcheck disable=SC2034  # read by die (common.sh)
  COMFYUME_CURRENT_STEP=$name
  die "setup step '${name}' failed (exit ${rc}); its full log: ${COMFYUME_BG_OUTS[i]}.log; fix the cause above and re-run npm run setup (finished pieces stay cached)"
}

await_steps() {
  local i pid running rc
  while :; do
    running=0
    for i in "${!COMFYUME_BG_PIDS[@]}"; do
      pid=${COMFYUME_BG_PIDS[i]}
      [[ -n $pid ]] || continue
      _forward_step_log "$i"
      if kill -0 "$pid" 2>/dev/null; then
        running=$((running + 1))
        continue
      fi
      rc=0
      wait "$pid" || rc=$?
      _finish_step "$i" "$rc"
    done
    ((running > 0)) || break
    sleep 1
  done
}
