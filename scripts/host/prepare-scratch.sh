#!/usr/bin/env bash
# prepare-scratch.sh: find the scratch block volume, format it ONLY if it is blank,
# mount it and create inputs/ outputs/ temp/.
#
# Usage: prepare-scratch.sh (--device PATH | --target NAME | --volume-id ID) [options]
#
#   --device PATH       the block device (env SCRATCH_DEVICE), e.g. /dev/vdb
#   --target NAME       the volume's attachment target from the Verda API, e.g. vdb
#                       (env SCRATCH_TARGET; resolved under ${DEV_DIR:-/dev})
#   --volume-id ID      the Verda volume id (env SCRATCH_VOLUME_ID), e.g. a UUID. Verda names
#                       the disk virtio-<last 12 hex digits of the id> in
#                       ${DEV_BY_ID_DIR:-/dev/disk/by-id}; every other entry there ending
#                       in those digits must be the same disk, else it is refused as ambiguous
#   --mount-point DIR   default ${COMFYUME_ROOT}/mnt/scratch (env SCRATCH_MOUNT)
#   --fs-type TYPE      the only filesystem accepted or created (env SCRATCH_FS; default ext4)
#   --label LABEL       label for a new filesystem (env SCRATCH_LABEL; default scratch)
#   --fstab FILE        default ${COMFYUME_ROOT}/etc/fstab (env FSTAB); --no-fstab to skip
#   --expect-data       the device must already hold the scratch filesystem (month-scoped,
#                       adopted or rescued scratch; env SCRATCH_EXPECT_DATA=1): it is NEVER
#                       formatted, and a blank or unreadable device is refused
#   --formatted-marker FILE  (env SCRATCH_FORMATTED_MARKER) a file on storage that outlives the
#                       instance (the SFS) recording that this scratch was formatted once. When it
#                       exists the run behaves as --expect-data; after a successful format (or
#                       when the filesystem is found) it is written. A month-scoped scratch is
#                       formatted on its first day only, and never again.
#   --help
#
# Safety: the device is formatted only on positive proof that it is blank: its first and last
# MiB and 64 KiB at each sixteenth were read (any read error refuses), `blkid -p` found no
# filesystem and no partition table (blkid also exits 2 when it cannot open the device, so
# that alone proves nothing), and every sampled byte is zero. A device holding the expected
# filesystem is mounted as is (never formatted). Any other signature, or data that no
# signature describes, is refused with an error: nothing is wiped. A device that is already
# mounted somewhere else is refused too.
#
# Environment for tests: COMFYUME_ROOT, BLKID_CMD, MKFS_CMD (mkfs.<fs-type>), MOUNT_CMD,
# MOUNTPOINT_CMD, PROC_MOUNTS, SCRATCH_ALLOW_FILE=1 (accept a regular file as the device).
#
# Exit codes: 0 ready and verified; 1 any failure or refusal.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/common.sh
source "${here}/../lib/common.sh"

ROOT=${COMFYUME_ROOT:-}
SCRATCH_DEVICE=${SCRATCH_DEVICE:-}
SCRATCH_TARGET=${SCRATCH_TARGET:-}
SCRATCH_VOLUME_ID=${SCRATCH_VOLUME_ID:-}
SCRATCH_MOUNT=${SCRATCH_MOUNT:-${ROOT}/mnt/scratch}
SCRATCH_FS=${SCRATCH_FS:-ext4}
SCRATCH_LABEL=${SCRATCH_LABEL:-scratch}
FSTAB=${FSTAB:-${ROOT}/etc/fstab}
WRITE_FSTAB=true
DEV_DIR=${DEV_DIR:-/dev}
DEV_BY_ID_DIR=${DEV_BY_ID_DIR:-/dev/disk/by-id}
BLKID_CMD=${BLKID_CMD:-blkid}
MOUNT_CMD=${MOUNT_CMD:-mount}
MOUNTPOINT_CMD=${MOUNTPOINT_CMD:-mountpoint}
PROC_MOUNTS=${PROC_MOUNTS:-/proc/mounts}
SCRATCH_ALLOW_FILE=${SCRATCH_ALLOW_FILE:-0}
SCRATCH_EXPECT_DATA=${SCRATCH_EXPECT_DATA:-0}
SCRATCH_FORMATTED_MARKER=${SCRATCH_FORMATTED_MARKER:-}
STABLE_NAME="" # the by-id link when the device was found by volume id

while (($#)); do
  case $1 in
    --device) need_value "$@"; SCRATCH_DEVICE=$2; shift 2 ;;
    --target) need_value "$@"; SCRATCH_TARGET=$2; shift 2 ;;
    --volume-id) need_value "$@"; SCRATCH_VOLUME_ID=$2; shift 2 ;;
    --mount-point) need_value "$@"; SCRATCH_MOUNT=$2; shift 2 ;;
    --fs-type) need_value "$@"; SCRATCH_FS=$2; shift 2 ;;
    --label) need_value "$@"; SCRATCH_LABEL=$2; shift 2 ;;
    --fstab) need_value "$@"; FSTAB=$2; shift 2 ;;
    --no-fstab) WRITE_FSTAB=false; shift ;;
    --expect-data) SCRATCH_EXPECT_DATA=1; shift ;;
    --formatted-marker) need_value "$@"; SCRATCH_FORMATTED_MARKER=$2; shift 2 ;;
    -h | --help) print_help "$0"; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
MKFS_CMD=${MKFS_CMD:-mkfs.${SCRATCH_FS}}
[[ $SCRATCH_EXPECT_DATA == 0 || $SCRATCH_EXPECT_DATA == 1 ]] || die "SCRATCH_EXPECT_DATA '${SCRATCH_EXPECT_DATA}' must be 0 or 1 (or pass --expect-data)"

# device_of_volume ID: sets SCRATCH_DEVICE to the block device of Verda volume ID. Verda's
# virtio serial for a disk is the last 12 hex digits of the volume id (verda-api.md section 10,
# item 5), so the full id never appears in /dev/disk/by-id.
device_of_volume() {
  local hex suffix link device other present
  hex=${1//-/}
  hex=${hex,,}
  [[ $hex =~ ^[0-9a-f]{12,}$ ]] || die "SCRATCH_VOLUME_ID '${1}' is not a Verda volume id (hex digits and dashes, e.g. a UUID)"
  suffix=${hex: -12}
  link="${DEV_BY_ID_DIR}/virtio-${suffix}"
  if [[ ! -e $link ]]; then
    present=$(find "$DEV_BY_ID_DIR" -mindepth 1 -maxdepth 1 -printf '%f ' 2>/dev/null || true)
    die "no ${link} for volume ${1} (present: ${present:-nothing}); is the volume attached to this instance? pass --device instead"
  fi
  device=$(readlink -f "$link")
  # Another name ending in the same digits (not a -partN) on another disk: two volumes look alike.
  shopt -s nullglob
  for other in "${DEV_BY_ID_DIR}"/*"${suffix}"; do
    [[ $(readlink -f "$other") == "$device" ]] ||
      die "volume ${1} is ambiguous: ${link} is ${device} but ${other} is $(readlink -f "$other"); refusing to guess, pass --device instead"
  done
  shopt -u nullglob
  log "volume ${1} is ${link} -> ${device}"
  SCRATCH_DEVICE=$device
  STABLE_NAME=$link
}

find_device() {
  require_cmd "$BLKID_CMD" "$MKFS_CMD" "$MOUNT_CMD" "$MOUNTPOINT_CMD" dd cmp stat blockdev
  if [[ -z $SCRATCH_DEVICE && -n $SCRATCH_TARGET ]]; then
    [[ $SCRATCH_TARGET =~ ^[A-Za-z0-9]+$ ]] || die "SCRATCH_TARGET '${SCRATCH_TARGET}' is not a device name like vdb"
    SCRATCH_DEVICE="${DEV_DIR}/${SCRATCH_TARGET}"
  fi
  if [[ -z $SCRATCH_DEVICE && -n $SCRATCH_VOLUME_ID ]]; then
    device_of_volume "$SCRATCH_VOLUME_ID"
  fi
  [[ -n $SCRATCH_DEVICE ]] || die "no scratch device given: pass --device /dev/vdX, --target vdX or --volume-id ID (from the Verda API)"
  if [[ -b $SCRATCH_DEVICE ]]; then
    :
  elif [[ -f $SCRATCH_DEVICE && $SCRATCH_ALLOW_FILE == 1 ]]; then
    log "using the regular file ${SCRATCH_DEVICE} as the device (SCRATCH_ALLOW_FILE=1)"
  else
    die "scratch device ${SCRATCH_DEVICE} is not a block device; is the volume attached (attach it after first boot and shutdown), and is the name right?"
  fi
  local where
  where=$(awk -v d="$SCRATCH_DEVICE" '$1 == d { print $2 }' "$PROC_MOUNTS" 2>/dev/null | head -n 1 || true)
  if [[ -n $where && $where != "$SCRATCH_MOUNT" ]]; then
    die "${SCRATCH_DEVICE} is already mounted at ${where}; refusing to use it as scratch at ${SCRATCH_MOUNT}"
  fi
  log "scratch device: ${SCRATCH_DEVICE}"
}

# device_size: sets DEVICE_SIZE in bytes (a regular file's size under SCRATCH_ALLOW_FILE=1).
device_size() {
  local out
  if [[ -b $SCRATCH_DEVICE ]]; then
    out=$(blockdev --getsize64 "$SCRATCH_DEVICE" 2>&1) || die "cannot read the size of ${SCRATCH_DEVICE}: ${out}; nothing was written. Is the volume attached and healthy (dmesg)? Re-attach it and re-run"
  else
    out=$(stat -L -c %s "$SCRATCH_DEVICE" 2>&1) || die "cannot stat ${SCRATCH_DEVICE}: ${out}; nothing was written"
  fi
  [[ $out =~ ^[1-9][0-9]*$ ]] || die "${SCRATCH_DEVICE} reports size '${out}'; nothing was written. Is the volume attached and healthy? Re-attach it and re-run"
  DEVICE_SIZE=$out
}

# read_samples: read sample regions of the device (the first and last MiB and 64 KiB at each
# sixteenth); dies when any read fails or comes back short. Sets SAMPLES_ZERO=true when every
# sampled byte is zero, else SAMPLES_ZERO=false and NONZERO_AT=<offset>.
read_samples() {
  local size mib=1048576 chunk=65536 offset length k out sample region
  device_size
  size=$DEVICE_SIZE
  sample=$(mktemp)
  SAMPLES_ZERO=true
  NONZERO_AT=""
  local -a regions=("0 $((size < mib ? size : mib))" "$((size > mib ? size - mib : 0)) $((size < mib ? size : mib))")
  for ((k = 1; k < 16; k++)); do
    offset=$((size * k / 16 / chunk * chunk))
    regions+=("${offset} $((offset + chunk > size ? size - offset : chunk))")
  done
  for region in "${regions[@]}"; do
    read -r offset length <<<"$region"
    if ! out=$(dd if="$SCRATCH_DEVICE" of="$sample" bs=64K iflag=skip_bytes,count_bytes skip="$offset" count="$length" status=none 2>&1) ||
      [[ $(stat -c %s "$sample") != "$length" ]]; then
      rm -f "$sample"
      die "cannot read ${SCRATCH_DEVICE} at offset ${offset} (${out:-short read}); nothing was written. The volume may be failing or wrongly attached: check dmesg, re-attach the volume (or rescue its data) and re-run; a device that cannot be read is never formatted"
    fi
    if [[ $SAMPLES_ZERO == true ]] && ! cmp -s -n "$length" "$sample" /dev/zero; then
      SAMPLES_ZERO=false
      NONZERO_AT=$offset
    fi
  done
  rm -f "$sample"
}

# probe: sets FS_TYPE and PT_TYPE from a low-level blkid probe (cache bypassed). blkid exits 2
# both for "nothing found" and when it cannot open or read the device, so exit 2 only means
# "no signature" after read_samples has read the device, and only when blkid printed nothing.
probe() {
  local out rc=0
  out=$("$BLKID_CMD" -p -o export "$SCRATCH_DEVICE" 2>&1) || rc=$?
  FS_TYPE=""
  PT_TYPE=""
  if ((rc == 2)) && [[ -z $out ]]; then
    return 0 # nothing recognised
  fi
  ((rc == 0)) || die "blkid could not probe ${SCRATCH_DEVICE} (exit ${rc}): ${out:-no output}; nothing was written. Check that the volume is attached and readable (dmesg), re-attach it and re-run"
  FS_TYPE=$(sed -n 's/^TYPE=//p' <<<"$out" | head -n 1)
  PT_TYPE=$(sed -n 's/^PTTYPE=//p' <<<"$out" | head -n 1)
  if [[ -z $FS_TYPE && -z $PT_TYPE ]]; then
    # Something was recognised (e.g. a RAID member or swap signature) under another key.
    FS_TYPE="unknown($(tr '\n' ' ' <<<"$out"))"
  fi
}

# format_if_blank: formats only on positive proof that the device is blank: the device was read
# (read_samples), blkid found no signature, AND every sampled byte is zero. The zero check is the
# independent second opinion: it does not depend on any signature database (wipefs would not be
# independent: it probes with the same libblkid), so data that no signature describes (a damaged
# or unknown filesystem, raw files) is never formatted. A new cloud volume reads as zeros.
format_if_blank() {
  local why="--expect-data: month-scoped, adopted or rescued"
  if [[ -n $SCRATCH_FORMATTED_MARKER && -e $SCRATCH_FORMATTED_MARKER ]]; then
    SCRATCH_EXPECT_DATA=1
    why="${SCRATCH_FORMATTED_MARKER} records that it was formatted before: $(head -n 1 "$SCRATCH_FORMATTED_MARKER" 2>/dev/null || true)"
  fi
  read_samples
  probe
  if [[ $FS_TYPE == "$SCRATCH_FS" ]]; then
    log "${SCRATCH_DEVICE} already holds ${SCRATCH_FS}: keeping its data, not formatting"
    record_formatted
    COMFYUME_STEP_RESULT=kept
    return 0
  fi
  if [[ $SCRATCH_EXPECT_DATA == 1 ]]; then
    die "${SCRATCH_DEVICE} holds no ${SCRATCH_FS} filesystem (found: ${FS_TYPE:-${PT_TYPE:-no signature}}), but this scratch should already hold data (${why}); refusing to format it. Check that the right volume is attached (compare its volume id with the stack's scratchVolumeId) and re-run; restore its files from R2 if the volume is lost"
  fi
  if [[ -n $FS_TYPE ]]; then
    die "${SCRATCH_DEVICE} holds a '${FS_TYPE}' filesystem, not ${SCRATCH_FS}; refusing to format it. If it is the wrong volume, attach the scratch volume instead; if its data is disposable, wipe it yourself (wipefs) and re-run"
  fi
  if [[ -n $PT_TYPE ]]; then
    die "${SCRATCH_DEVICE} carries a '${PT_TYPE}' partition table; refusing to format it. Pass the partition (e.g. ${SCRATCH_DEVICE}1) or wipe the table yourself if it is disposable"
  fi
  if [[ $SAMPLES_ZERO != true ]]; then
    die "${SCRATCH_DEVICE} is not blank: blkid finds no signature but it holds data (non-zero bytes at offset ${NONZERO_AT}); refusing to format it. If it is the wrong volume, attach the scratch volume instead; if it holds users' files, rescue them first; if it is truly disposable, zero it yourself (blkdiscard -z) and re-run"
  fi
  log "${SCRATCH_DEVICE} reads as blank (no signature, sampled regions all zero): formatting as ${SCRATCH_FS}"
  local out
  out=$("$MKFS_CMD" -q -L "$SCRATCH_LABEL" "$SCRATCH_DEVICE" 2>&1) || die "${MKFS_CMD} ${SCRATCH_DEVICE} failed: ${out}"
  probe
  [[ $FS_TYPE == "$SCRATCH_FS" ]] || die "after formatting, blkid reports '${FS_TYPE:-nothing}' on ${SCRATCH_DEVICE}, not ${SCRATCH_FS}"
  record_formatted
  COMFYUME_STEP_RESULT=formatted
}

# record_formatted: writes the --formatted-marker (once), so no later run formats this scratch.
record_formatted() {
  [[ -n $SCRATCH_FORMATTED_MARKER && ! -e $SCRATCH_FORMATTED_MARKER ]] || return 0
  local uuid
  uuid=$("$BLKID_CMD" -p -o value -s UUID "$SCRATCH_DEVICE" 2>/dev/null) || uuid=unknown
  mkdir -p "$(dirname "$SCRATCH_FORMATTED_MARKER")" || die "cannot create the directory of ${SCRATCH_FORMATTED_MARKER}; is the SFS mounted?"
  if ! printf 'scratch %s UUID=%s formatted-or-found %s\n' "${SCRATCH_VOLUME_ID:-$SCRATCH_DEVICE}" "$uuid" "$(_ts)" >"${SCRATCH_FORMATTED_MARKER}.tmp" ||
    ! mv "${SCRATCH_FORMATTED_MARKER}.tmp" "$SCRATCH_FORMATTED_MARKER"; then
    die "cannot write ${SCRATCH_FORMATTED_MARKER}"
  fi
  log "recorded in ${SCRATCH_FORMATTED_MARKER}: this scratch is never formatted again"
}

mount_scratch() {
  mkdir -p "$SCRATCH_MOUNT"
  if "$MOUNTPOINT_CMD" -q "$SCRATCH_MOUNT"; then
    local src
    src=$(awk -v mp="$SCRATCH_MOUNT" '$2 == mp { s = $1 } END { print s }' "$PROC_MOUNTS" 2>/dev/null || true)
    [[ -z $src || $src == "$SCRATCH_DEVICE" ]] || die "${SCRATCH_MOUNT} is already mounted from ${src}, not ${SCRATCH_DEVICE}"
    COMFYUME_STEP_RESULT=unchanged
    return 0
  fi
  local out
  out=$("$MOUNT_CMD" -t "$SCRATCH_FS" -o defaults "$SCRATCH_DEVICE" "$SCRATCH_MOUNT" 2>&1) || die "mount ${SCRATCH_DEVICE} at ${SCRATCH_MOUNT} failed: ${out}"
  COMFYUME_STEP_RESULT=changed
}

write_fstab() {
  if [[ $WRITE_FSTAB != true ]]; then
    COMFYUME_STEP_RESULT=skipped
    return 0
  fi
  # A stable name, never /dev/vdX (the kernel may hand out other names on the next boot): the
  # by-id link of the volume when it was found by volume id (it names this very volume, even
  # next to a clone), else the filesystem UUID. nofail: a missing volume never blocks boot.
  local line source=$STABLE_NAME uuid
  if [[ -z $source ]]; then
    uuid=$("$BLKID_CMD" -p -o value -s UUID "$SCRATCH_DEVICE" 2>&1) || uuid=""
    [[ $uuid =~ ^[0-9A-Fa-f-]+$ ]] || die "cannot read the filesystem UUID of ${SCRATCH_DEVICE} (blkid: ${uuid:-nothing}) for ${FSTAB}; pass --volume-id to record the by-id name instead, or --no-fstab"
    source="UUID=${uuid}"
  fi
  line="${source} ${SCRATCH_MOUNT} ${SCRATCH_FS} defaults,nofail 0 2"
  COMFYUME_STEP_RESULT=$(fstab_set_entry "$FSTAB" "$SCRATCH_MOUNT" "$line")
}

make_dirs() {
  mkdir -p "${SCRATCH_MOUNT}/inputs" "${SCRATCH_MOUNT}/outputs" "${SCRATCH_MOUNT}/temp"
  # The queue manager and worker containers write outputs as uid 1000.
  chmod 1777 "${SCRATCH_MOUNT}/outputs"
}

verify() {
  "$MOUNTPOINT_CMD" -q "$SCRATCH_MOUNT" || die "${SCRATCH_MOUNT} is not a mount point"
  local probe_file="${SCRATCH_MOUNT}/temp/.comfyume-probe-$$" token
  token="probe-$(date +%s%N)"
  printf '%s\n' "$token" >"$probe_file" || die "cannot write to ${SCRATCH_MOUNT}/temp"
  [[ $(cat "$probe_file") == "$token" ]] || die "read-back of ${probe_file} returned other bytes"
  rm -f "$probe_file"
  [[ $(stat -c %a "${SCRATCH_MOUNT}/outputs") == 1777 ]] || die "${SCRATCH_MOUNT}/outputs is not mode 1777"
}

step device find_device
step format-if-blank format_if_blank
step mount mount_scratch
step fstab write_fstab
step directories make_dirs
step verify verify
step_summary
