#!/usr/bin/env bash
# bootstrap-host.sh: install and verify the host toolchain the project's scripts need (rclone, jq,
# nfs-common, ...: pinned in toolchain.lock next to this script). Runs first on every host the
# project touches, before any other host script. Idempotent.
#
# Usage: bootstrap-host.sh [--cache DIR] [--no-download] [--pre-mount | --no-sfs] [--lock FILE]
#
#   --cache DIR     the toolchain cache on the SFS, e.g. /mnt/sfs/.comfyume/toolchain: packages are
#                   kept in DIR/<VERSION_CODENAME>-<dpkg arch>/ (*.deb, SHA256SUMS, PACKAGES). Read
#                   when present (every sha256 verified first; a mismatch refuses the cache), written
#                   after a download when DIR is writable (temp dir + atomic rename)
#   --no-download   never download: fail naming the missing tools instead
#   --pre-mount     only what mounting the SFS needs (scope pre-mount: nfs-common)
#   --no-sfs        a host that never mounts the SFS (mello): everything but scope pre-mount
#   --lock FILE     the pinned tool list (default: toolchain.lock next to this script)
#   --help          this text
#
# First, when the instance's first-boot script is still installing the toolchain in the background (the pre-mount
# tools under /var/lib/comfyume/first-boot-toolchain.lock, then the rest under first-boot-toolchain-rest.lock), wait
# for the part this run checks (COMFYUME_FIRST_BOOT_WAIT_SECONDS each, default 600). Order: (a) every tool present
# at its pinned minimum: exit 0 at once (the fast path); (b) else the cache, verified, installed with no network
# (apt-get with no package source but the cached files); (c) else apt-get
# update + install --no-install-recommends from the host's configured sources, then the cache is
# written. After an install every tool must run and report a version >= its pin.
# Installing needs root: re-runs itself through `sudo -n` when not root.
# The last line on stdout: bootstrap: <ok|installed-from-cache|downloaded> <seconds>s <tool=version ...>
#
# Environment: COMFYUME_ROOT (a sandboxed host for tests: tools are checked, never installed, since
# apt-get would change this machine's / rather than the sandbox).
#
# Exit codes: 0 every tool present and at its pin; 1 anything else (the tool, the source tried, the fix).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/common.sh
source "${here}/../lib/common.sh"

ORIGINAL_ARGS=("$@")
START_US=${EPOCHREALTIME//[!0-9]/}
CACHE_DIR=""
NO_DOWNLOAD=false
PRE_MOUNT=false
NO_SFS=false
LOCK_FILE="${here}/toolchain.lock"

while (($#)); do
  case $1 in
    --cache) need_value "$@"; CACHE_DIR=$2; shift 2 ;;
    --no-download) NO_DOWNLOAD=true; shift ;;
    --pre-mount) PRE_MOUNT=true; shift ;;
    --no-sfs) NO_SFS=true; shift ;;
    --lock) need_value "$@"; LOCK_FILE=$2; shift 2 ;;
    -h | --help) print_help "$0"; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done

# ---------------------------------------------------------------------------
# tc_read_lock FILE PRE_MOUNT [NO_SFS]: the pinned tools (TC_TOOLS, TC_PKGS, TC_MINS, TC_VARGS), all of them,
# only scope pre-mount, or (NO_SFS) all but scope pre-mount.
tc_read_lock() {
  local file=$1 pre_mount=$2 no_sfs=${3:-false} tool pkg min varg scope why n=0
  [[ -r $file ]] || die "the pinned tool list ${file} is missing: upload scripts/host/toolchain.lock next to bootstrap-host.sh"
  TC_TOOLS=() TC_PKGS=() TC_MINS=() TC_VARGS=()
  while read -r tool pkg min varg scope why; do
    n=$((n + 1))
    [[ -z $tool || $tool == \#* ]] && continue
    [[ -n $why && $scope =~ ^(pre-mount|all)$ && $min =~ ^(-|[0-9][0-9.]*)$ ]] ||
      die "${file} line ${n}: expected 'tool package min version-arg scope why' (scope pre-mount or all, min a version or -)"
    [[ $pre_mount == true && $scope != pre-mount ]] && continue
    [[ $no_sfs == true && $scope == pre-mount ]] && continue
    TC_TOOLS+=("$tool") TC_PKGS+=("$pkg") TC_MINS+=("$min") TC_VARGS+=("$varg")
  done <"$file"
  ((${#TC_TOOLS[@]} > 0)) || die "${file} lists no tools"
}

# tc_version_ge HAVE MIN: version HAVE >= MIN (numeric, dot by dot; a missing part counts 0). In bash alone: it
# runs for every tool in every check, where three forks each added up.
tc_version_ge() {
  local -a have want
  local i h w
  IFS=. read -r -a have <<<"$1"
  IFS=. read -r -a want <<<"$2"
  for ((i = 0; i < ${#have[@]} || i < ${#want[@]}; i++)); do
    h=${have[i]:-0} w=${want[i]:-0}
    h=${h%%[!0-9]*} w=${w%%[!0-9]*}
    ((10#${h:-0} == 10#${w:-0})) || return $((10#${h:-0} < 10#${w:-0}))
  done
}

# tc_tool_version TOOL VERSION-ARG PACKAGE: the version the tool reports (VERSION-ARG "-": the
# package's version from dpkg, or "present"). Fails when the tool is missing or does not run.
tc_tool_version() {
  local tool=$1 varg=$2 pkg=$3 out v
  command -v "$tool" >/dev/null 2>&1 || return 1
  if [[ $varg == - ]]; then
    [[ -x $(command -v "$tool") ]] || return 1
    v=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null || true)
    v=${v#*:}
    printf '%s' "${v%%[-+~]*}"
    [[ -n $v ]] || printf 'present'
    return 0
  fi
  out=$(timeout 20 "$tool" "$varg" 2>&1 </dev/null) || return 1
  v=$(grep -oE '[0-9]+\.[0-9]+(\.[0-9]+)?' <<<"$out" | head -n 1 || true)
  [[ -n $v ]] || return 1
  printf '%s' "$v"
}

# tc_probe_versions DIR: each tool's version (tc_tool_version) into DIR/<index>, or DIR/<index>.failed, all probes
# at once: they are independent processes (rclone's Go start-up, curl, mkfs, ...), and one after another they
# cost every bootstrap run (check, then verify) ~0.5 s on a day-up's critical path.
tc_probe_versions() {
  local dir=$1 i
  for i in "${!TC_TOOLS[@]}"; do
    { tc_tool_version "${TC_TOOLS[i]}" "${TC_VARGS[i]}" "${TC_PKGS[i]}" >"${dir}/${i}" || : >"${dir}/${i}.failed"; } &
  done
  wait
}

# tc_check_tools: TC_FOUND (tool=version), TC_MISSING (what is wrong, per tool) and TC_MISSING_PKGS.
tc_check_tools() {
  local i tool pkg min v pin probes
  TC_FOUND=() TC_MISSING=() TC_MISSING_PKGS=()
  probes=$(mktemp -d "${TMPDIR:-/tmp}/comfyume-probe.XXXXXX")
  tc_probe_versions "$probes"
  for i in "${!TC_TOOLS[@]}"; do
    tool=${TC_TOOLS[i]} pkg=${TC_PKGS[i]} min=${TC_MINS[i]}
    pin="${pkg}"
    [[ $min == - ]] || pin="${pkg} >= ${min}"
    if [[ ! -e ${probes}/${i}.failed ]] && v=$(<"${probes}/${i}"); then
      if [[ $min == - ]] || tc_version_ge "$v" "$min"; then
        TC_FOUND+=("${tool}=${v}")
        continue
      fi
      TC_MISSING+=("${tool} (${pin}): found ${v}")
    else
      TC_MISSING+=("${tool} (${pin}): not installed or does not run")
    fi
    [[ " ${TC_MISSING_PKGS[*]} " == *" ${pkg} "* ]] || TC_MISSING_PKGS+=("$pkg")
  done
  rm -rf "$probes"
  ((${#TC_MISSING[@]} == 0)) || COMFYUME_STEP_RESULT="missing ${TC_MISSING_PKGS[*]}"
}

tc_missing_text() {
  local IFS=';'
  printf '%s' "${TC_MISSING[*]}" | sed 's/;/; /g'
}

# tc_distro_key: TC_KEY=<VERSION_CODENAME>-<dpkg arch>, the cache's subdirectory for this host.
tc_distro_key() {
  local codename arch
  codename=$(. /etc/os-release 2>/dev/null && printf '%s' "${VERSION_CODENAME:-}") || true
  arch=$(dpkg --print-architecture 2>/dev/null) || true
  TC_KEY=""
  if [[ -n $codename && -n $arch ]]; then TC_KEY="${codename}-${arch}"; fi
}

# tc_apt_sources: the host's configured package sources, on one line (for error messages).
tc_apt_sources() {
  local files=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources)
  { grep -hsE '^[[:space:]]*(deb[[:space:]]|URIs:)' "${files[@]}" || true; } | sed -E 's/^[[:space:]]+//' | paste -sd ';' - | sed 's/;/; /g'
}

tc_deb_package() { dpkg-deb -f "$1" Package; }
tc_installed() { [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true) == "install ok installed" ]]; }

# tc_try_cache DIR: install the missing packages from DIR/<key>/ after verifying every sha256 (on a
# private copy: what is installed is exactly what was checked, whatever another host writes
# meanwhile). TC_CACHE_RESULT: "installed", or why the cache was not used.
tc_try_cache() {
  local src="$1/${TC_KEY}" copy="${WORK}/cache" out names=() f pkg debs=()
  TC_CACHE_RESULT="" TC_CACHE_VERIFIED=""
  if [[ -z $TC_KEY ]]; then TC_CACHE_RESULT="no VERSION_CODENAME in /etc/os-release or no dpkg"; return 0; fi
  if [[ ! -f ${src}/SHA256SUMS ]]; then
    TC_CACHE_RESULT="no toolchain cache at ${src}"
    log "${TC_CACHE_RESULT}"
    COMFYUME_STEP_RESULT="no cache"
    return 0
  fi
  mapfile -t names < <(awk '{ n = $2; sub(/^\*/, "", n); print n }' "${src}/SHA256SUMS")
  for f in "${names[@]}"; do
    [[ $f =~ ^[A-Za-z0-9][A-Za-z0-9.+~%_:-]*[.]deb$ ]] || { names=(); break; }
  done
  if ((${#names[@]} == 0)); then
    TC_CACHE_RESULT="${src}/SHA256SUMS lists no .deb files (or a name that is not a plain .deb file name)"
    log "REFUSED the toolchain cache: ${TC_CACHE_RESULT}"
    COMFYUME_STEP_RESULT=refused
    return 0
  fi
  mkdir -p "$copy"
  if ! out=$(cd "$src" && cp -- SHA256SUMS "${names[@]}" "$copy/" 2>&1); then
    TC_CACHE_RESULT="cannot read ${src}: ${out}"
    log "REFUSED the toolchain cache: ${TC_CACHE_RESULT}"
    COMFYUME_STEP_RESULT=refused
    return 0
  fi
  if ! out=$(cd "$copy" && sha256sum --strict -c SHA256SUMS 2>&1); then
    TC_CACHE_RESULT="checksum mismatch in ${src}: $(grep -v ': OK$' <<<"$out" | paste -sd ' ' -)"
    log "REFUSED the toolchain cache (not used; rewritten after a download): ${TC_CACHE_RESULT}"
    COMFYUME_STEP_RESULT=refused
    return 0
  fi
  TC_CACHE_VERIFIED=$copy
  declare -A in_cache=()
  mkdir -p "${WORK}/install"
  for f in "${names[@]}"; do
    pkg=$(tc_deb_package "${copy}/${f}")
    in_cache[$pkg]=1
    # Only packages not yet installed (or below their pin): an installed newer version is never downgraded.
    if ! tc_installed "$pkg" || [[ " ${TC_MISSING_PKGS[*]} " == *" ${pkg} "* ]]; then
      # apt refuses local paths holding apt's own %3a (an epoch's colon): plain names for the install.
      ln "${copy}/${f}" "${WORK}/install/${#debs[@]}-${pkg}.deb"
      debs+=("${WORK}/install/${#debs[@]}-${pkg}.deb")
    fi
  done
  for pkg in "${TC_MISSING_PKGS[@]}"; do
    if [[ -z ${in_cache[$pkg]:-} ]]; then
      TC_CACHE_RESULT="the cache ${src} has no ${pkg} package"
      log "${TC_CACHE_RESULT}"
      COMFYUME_STEP_RESULT=incomplete
      return 0
    fi
  done
  log "toolchain cache ${src}: ${#names[@]} package(s), every sha256 verified; installing ${#debs[@]}"
  # No network by construction: apt sees no package source at all, only these files and what is
  # installed (--no-download itself breaks on local files in apt 2.6).
  mkdir -p "${WORK}/no-sources" "${WORK}/no-lists/partial"
  local offline=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=${WORK}/no-sources" -o "Dir::State::Lists=${WORK}/no-lists" -o DPkg::Lock::Timeout=300)
  if ! out=$(apt-get -qq "${offline[@]}" install -y --no-install-recommends "${debs[@]}" 2>&1); then
    TC_CACHE_RESULT="apt-get install (offline) from ${src} failed: $(tail -n 3 <<<"$out" | paste -sd ' ' -)"
    log "${TC_CACHE_RESULT}"
    COMFYUME_STEP_RESULT=failed
    return 0
  fi
  TC_CACHE_RESULT=installed
  COMFYUME_STEP_RESULT=installed
}

# tc_download: apt-get update + install of the missing packages from the host's own sources; the
# .deb files stay in WORK/archives for the cache.
tc_download() {
  local sources out archives="${WORK}/archives"
  local opts=(-o "Dir::Cache::archives=${archives}" -o APT::Keep-Downloaded-Packages=true -o DPkg::Lock::Timeout=300)
  mkdir -p "${archives}/partial"
  sources=$(tc_apt_sources)
  [[ -n $sources ]] || die "cannot download ${TC_MISSING_PKGS[*]}: no apt sources are configured (/etc/apt/sources.list, /etc/apt/sources.list.d/). Fix: configure the distribution's archive, or use --cache with a verified toolchain cache"
  log "downloading ${TC_MISSING_PKGS[*]} from: ${sources}"
  # apt-get update exits 0 when a source cannot be reached (only a warning): that is a failure here.
  if ! out=$(apt-get -qq "${opts[@]}" update 2>&1) || grep -qE '^(W|E): (Failed to fetch|Some index files failed)' <<<"$out"; then
    die "apt-get update failed (sources: ${sources}): $(grep -E '^(W|E):' <<<"$out" | head -n 2 | paste -sd ' ' -). Fix: check the host's network and apt sources"
  fi
  if ! out=$(apt-get -qq "${opts[@]}" install -y --no-install-recommends "${TC_MISSING_PKGS[@]}" 2>&1); then
    die "apt-get install ${TC_MISSING_PKGS[*]} failed (sources: ${sources}): $(tail -n 3 <<<"$out" | paste -sd ' ' -). Fix: check the host's network and apt sources (apt-get update), or install from a verified --cache"
  fi
  COMFYUME_STEP_RESULT="$(find "$archives" -maxdepth 1 -name '*.deb' | wc -l) package(s)"
}

# tc_verify SOURCE: every tool runs and reports a version >= its pin, or fail naming each and SOURCE.
tc_verify() {
  tc_check_tools
  ((${#TC_MISSING[@]} == 0)) ||
    die "installed from ${1}, but: $(tc_missing_text). Fix: make that source carry the pinned versions (scripts/host/toolchain.lock), or lower a pin only after testing the scripts with the older tool"
}

# tc_write_cache DIR: DIR/<key> becomes (atomically) the downloaded .debs plus those of the verified
# old cache that were not superseded, with SHA256SUMS and PACKAGES (package, version, file).
tc_write_cache() {
  local dir=$1 staging f new_pkgs=" " pkg link previous
  if ! mkdir -p "$dir" 2>/dev/null || [[ ! -w $dir ]]; then
    warn "the toolchain cache ${dir} is not writable: not written (the next host downloads again)"
    COMFYUME_STEP_RESULT="not writable"
    return 0
  fi
  staging=$(mktemp -d "${dir}/.${TC_KEY}.XXXXXX")
  chmod 755 "$staging"
  for f in "$WORK"/archives/*.deb; do
    cp -- "$f" "$staging/"
    new_pkgs+="$(tc_deb_package "$f") "
  done
  if [[ -n ${TC_CACHE_VERIFIED:-} ]]; then
    for f in "$TC_CACHE_VERIFIED"/*.deb; do
      pkg=$(tc_deb_package "$f")
      [[ $new_pkgs == *" ${pkg} "* ]] || cp -- "$f" "$staging/"
    done
  fi
  (
    cd "$staging"
    sha256sum -- *.deb >SHA256SUMS
    for f in *.deb; do printf '%s\t%s\t%s\n' "$(dpkg-deb -f "$f" Package)" "$(dpkg-deb -f "$f" Version)" "$f"; done | sort >PACKAGES
  )
  # DIR/<key> is a symlink to a complete directory, replaced by one rename: a reader sees the old
  # set or the new one, never half of one; two hosts writing at once leave one complete set.
  previous=$(readlink "${dir}/${TC_KEY}" 2>/dev/null || true)
  if [[ -d ${dir}/${TC_KEY} && ! -L ${dir}/${TC_KEY} ]]; then mv -T "${dir}/${TC_KEY}" "${dir}/.${TC_KEY}.replaced.$$"; fi
  link="${dir}/.${TC_KEY}.link.$$"
  ln -sfn "$(basename "$staging")" "$link"
  mv -T "$link" "${dir}/${TC_KEY}"
  # Older sets go after an hour (a host may still be copying the previous one; other hosts' staging
  # directories are younger than that).
  find "$dir" -mindepth 1 -maxdepth 1 -name ".${TC_KEY}.*" -mmin +60 ! -name "$(basename "$staging")" ! -name "${previous:-none}" -exec rm -rf {} + 2>/dev/null || true
  log "toolchain cache written: ${dir}/${TC_KEY} -> $(basename "$staging") ($(wc -l <"${staging}/SHA256SUMS") package(s))"
  COMFYUME_STEP_RESULT=written
}
# tc_wait_first_boot: the worker's first-boot script may still be installing the toolchain in the background
# (components/toolchain.ts, toolchainFirstBootScript): the pre-mount tools under FIRST_BOOT_LOCK, then the rest under
# FIRST_BOOT_REST_LOCK. Wait for the part this run checks (--pre-mount: the first only) rather than start a second apt
# run beside it. What it installed is then checked like anything else.
tc_wait_first_boot() {
  local locks=("${COMFYUME_ROOT:-}${FIRST_BOOT_LOCK}") lock log="${COMFYUME_ROOT:-}${FIRST_BOOT_LOG}" waited=() started
  [[ $PRE_MOUNT == true ]] || locks+=("${COMFYUME_ROOT:-}${FIRST_BOOT_REST_LOCK}")
  for lock in "${locks[@]}"; do
    [[ -e $lock ]] || continue
    started=$SECONDS
    if ! flock -s -w "$FIRST_BOOT_WAIT_SECONDS" "$lock" true; then
      die "the first-boot install of the toolchain still holds ${lock} after ${FIRST_BOOT_WAIT_SECONDS}s (log: ${log}: $(tail -n 2 "$log" 2>/dev/null | paste -sd ' ' -)). Fix: see why apt hangs on the host (ps, that log), stop it, then run the up again"
    fi
    log "waited for ${lock} ($((SECONDS - started))s)"
    waited+=("$(basename "$lock")")
  done
  COMFYUME_STEP_RESULT="waited for ${#waited[@]} lock(s)"
  ((${#waited[@]})) || COMFYUME_STEP_RESULT=none
}
# ---------------------------------------------------------------------------

FIRST_BOOT_LOCK=/var/lib/comfyume/first-boot-toolchain.lock
FIRST_BOOT_REST_LOCK=/var/lib/comfyume/first-boot-toolchain-rest.lock
FIRST_BOOT_LOG=/var/log/comfyume-first-boot-toolchain.log
FIRST_BOOT_WAIT_SECONDS=${COMFYUME_FIRST_BOOT_WAIT_SECONDS:-600}
export DEBIAN_FRONTEND=noninteractive
WORK=""
cleanup_work() { if [[ -n $WORK ]]; then rm -rf "$WORK"; fi; }
on_exit cleanup_work
# A failed run's last stderr line is the cause and its fix (a failed remote command shows its last lines).
cause_last_on_exit

# finish HOW: the summary table, then the one-line result on stdout (the script's last line).
finish() {
  local took_us=$((${EPOCHREALTIME//[!0-9]/} - START_US))
  local line
  line=$(printf 'bootstrap: %s %d.%02ds %s' "$1" $((took_us / 1000000)) $((took_us % 1000000 / 10000)) "${TC_FOUND[*]}")
  [[ $1 == ok ]] || step_summary
  log "$line"
  printf '%s\n' "$line"
}

# become_root: installing needs root; re-run this script through sudo (no password prompt).
become_root() {
  ((EUID == 0)) && return 0
  command -v sudo >/dev/null 2>&1 || die "installing ${TC_MISSING_PKGS[*]} needs root and sudo is missing; run bootstrap-host.sh as root"
  sudo -n true 2>/dev/null || die "installing ${TC_MISSING_PKGS[*]} needs root: sudo asks for a password for $(id -un); run bootstrap-host.sh as root or give this user passwordless sudo"
  log "not root: re-running through sudo -n"
  exec sudo -n bash "${BASH_SOURCE[0]}" "${ORIGINAL_ARGS[@]}"
}

refuse_sandbox() {
  [[ -z ${COMFYUME_ROOT:-} ]] && return 0
  die "COMFYUME_ROOT=${COMFYUME_ROOT} is set (a sandboxed host): installing packages would change this machine's own /, not the sandbox; missing: $(tc_missing_text). Install them on this machine (e.g. scripts/setup/system-packages.sh) or run the bootstrap on the host itself"
}

[[ $PRE_MOUNT != true || $NO_SFS != true ]] || die "--no-sfs and --pre-mount together leave no tool to check: --pre-mount before mounting the SFS, --no-sfs on a host without it"
tc_read_lock "$LOCK_FILE" "$PRE_MOUNT" "$NO_SFS"
step first-boot tc_wait_first_boot
step check tc_check_tools
if ((${#TC_MISSING[@]} == 0)); then
  finish ok
  exit 0
fi
log "missing or below pin: $(tc_missing_text)"
refuse_sandbox
become_root
WORK=$(mktemp -d "${TMPDIR:-/tmp}/comfyume-bootstrap.XXXXXX")
tc_distro_key

if [[ -n $CACHE_DIR ]]; then
  step install-from-cache tc_try_cache "$CACHE_DIR"
  if [[ $TC_CACHE_RESULT == installed ]]; then
    step verify tc_verify "the SFS toolchain cache ${CACHE_DIR}/${TC_KEY}"
    finish installed-from-cache
    exit 0
  fi
fi

if [[ $NO_DOWNLOAD == true ]]; then
  cache_note="no --cache was given"
  [[ -z $CACHE_DIR ]] || cache_note="the cache ${CACHE_DIR}/${TC_KEY} could not be used (${TC_CACHE_RESULT})"
  die "missing: $(tc_missing_text); --no-download is set and ${cache_note}. Fix: run it without --no-download (installs from the host's apt sources), or give a --cache filled by a host of the same distribution and architecture"
fi
step download tc_download
step verify tc_verify "apt sources: $(tc_apt_sources)"
if [[ -n $CACHE_DIR ]]; then step write-cache tc_write_cache "$CACHE_DIR"; fi
finish downloaded
