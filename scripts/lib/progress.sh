# shellcheck shell=bash
# Progress of long steps: log lines, a JSON file and stall warnings.
# Part of the shared library: common.sh sources it; never source it on its own.

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
  COMFYUME_PROGRESS_LAST=
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
  # progress_at rewrites the file in place: a read between its truncate and its write finds it empty. The last
  # counts read stand in then, so a report never goes back to 0.
  if [[ ${files:-} =~ ^[0-9]+$ && ${bytes:-} =~ ^[0-9]+$ ]]; then
    COMFYUME_PROGRESS_LAST="${files}	${bytes}	${current:-}"
  else
    IFS=$'\t' read -r files bytes current <<<"${COMFYUME_PROGRESS_LAST:-0	0	}"
  fi
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

