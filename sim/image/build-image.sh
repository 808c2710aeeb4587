#!/usr/bin/env bash
# build-image.sh: the stock machine image of the simulated cloud, and the package mirror that
# stands in for the internet's package archives. Built once per version with mmdebstrap from
# Debian's packages and cached outside the repository (under ${COMFYUME_CACHE}/sim-image/<key>/):
#
#   rootfs/   a minimal Debian bookworm shaped like a stock cloud image: OpenSSH server, sudo, curl,
#             e2fsprogs, util-linux, cron, iproute2, python3 (cloud-init's language) -- and, like Verda's Ubuntu images, no rclone,
#             no jq, no nfs-common. No SSH host keys (each machine makes its own at first boot,
#             as cloud-init does) and an empty machine-id.
#   mirror/   a flat apt repository (Packages, Release) with the .deb files the host toolchain
#             bootstrap installs (TOOLCHAIN_PACKAGES and their dependencies missing from rootfs/),
#             served on loopback by the local cloud in place of the distribution's archive.
#
# Prints KEY=VALUE lines (COMFYUME_SIM_ROOTFS, COMFYUME_SIM_MIRROR) for .comfyume/tools.env.
# Usage: build-image.sh [--cache DIR]   (default ${COMFYUME_CACHE:-~/.cache/comfyume-infra})
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../scripts/lib/common.sh
source "${here}/../../scripts/lib/common.sh"

SUITE=bookworm
DEBIAN_MIRROR=${COMFYUME_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# What a stock cloud image has (Ubuntu's cloud images ship all of these). python3 too: cloud-init,
# which every cloud image runs at first boot, is written in it (Verda's Ubuntu images, Hetzner's).
# Without it the simulated first boot installed python3 for nfs-common, 2-4 s a real host never spends.
IMAGE_PACKAGES=(openssh-server openssh-sftp-server sudo curl ca-certificates e2fsprogs util-linux mount procps iproute2 cron gzip tar less python3)
# What the project must install itself (scripts/host/bootstrap-host.sh); the mirror carries them.
TOOLCHAIN_PACKAGES=(jq nfs-common rclone)

cache=${COMFYUME_CACHE:-${XDG_CACHE_HOME:-${HOME}/.cache}/comfyume-infra}
case ${1:-} in
  --cache) cache=${2:?--cache needs a directory}; shift 2 ;;
  -h | --help) print_help "$0"; exit 0 ;;
  "") ;;
  *) die "unknown option '$1' (see --help)" ;;
esac

key=$( { cat "${BASH_SOURCE[0]}"; echo "$SUITE ${IMAGE_PACKAGES[*]} / ${TOOLCHAIN_PACKAGES[*]}"; } | sha256sum | cut -c1-12)
image_dir="${cache}/sim-image/${SUITE}-${key}"

emit() {
  printf 'COMFYUME_SIM_ROOTFS=%s\nCOMFYUME_SIM_MIRROR=%s\n' "${image_dir}/rootfs" "${image_dir}/mirror"
}

if [[ -f "${image_dir}/.complete" ]]; then
  log "sim image: cached at ${image_dir}"
  emit
  exit 0
fi
((EUID == 0)) || die "building the simulated cloud's image needs root (mmdebstrap into a directory, chroot); run npm run setup as root, e.g. in the CI container"
command -v mmdebstrap >/dev/null 2>&1 || die "mmdebstrap is missing; run: sudo bash scripts/setup/system-packages.sh"
command -v apt-ftparchive >/dev/null 2>&1 || die "apt-ftparchive is missing (package apt-utils); run: sudo bash scripts/setup/system-packages.sh"

if compgen -G "${cache}/sim-image/${SUITE}-*/.complete" >/dev/null; then
  log "sim image: building with mmdebstrap (Debian ${SUITE}, downloads and unpacks about 140 packages): this script or its package lists changed (key ${key}, not in cache ${image_dir})"
else
  log "sim image: building with mmdebstrap (Debian ${SUITE}, downloads and unpacks about 140 packages): not in cache ${image_dir}; every simulated host boots it"
fi
work="${image_dir}.partial.$$"
rm -rf "$work"
mkdir -p "${work}/mirror"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

build_rootfs() {
  local include
  include=$(IFS=,; echo "${IMAGE_PACKAGES[*]}")
  mmdebstrap --quiet --variant=minbase --include="$include" "$SUITE" "${work}/rootfs" "$DEBIAN_MIRROR"
}

download_toolchain() {
  # apt inside the new image resolves exactly the dependencies the image lacks.
  local root="${work}/rootfs"
  cp /etc/resolv.conf "${root}/etc/resolv.conf"
  chroot "$root" apt-get -qq update
  chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get -qq install --download-only -y --no-install-recommends "${TOOLCHAIN_PACKAGES[@]}"
  mv "${root}"/var/cache/apt/archives/*.deb "${work}/mirror/"
  chroot "$root" apt-get -qq clean
  rm -rf "${root}"/var/lib/apt/lists/*
  : >"${root}/etc/resolv.conf"
  local p
  for p in "${TOOLCHAIN_PACKAGES[@]}"; do
    compgen -G "${work}/mirror/${p}_*.deb" >/dev/null || die "the mirror lacks ${p} after the download"
  done
}

index_mirror() {
  (cd "${work}/mirror" && apt-ftparchive packages . >Packages && gzip -9kn Packages && apt-ftparchive release . >Release)
}

make_stock() {
  local root="${work}/rootfs"
  # A cloud image has no host keys until first boot, and no machine identity.
  rm -f "${root}"/etc/ssh/ssh_host_*
  : >"${root}/etc/machine-id"
  # The distribution's archive is "the internet"; the local cloud points each machine at its mirror.
  rm -f "${root}/etc/apt/sources.list" "${root}"/etc/apt/sources.list.d/*
}

step rootfs build_rootfs
step toolchain-debs download_toolchain
step mirror-index index_mirror
step stock-image make_stock
date -u +%FT%TZ >"${work}/.complete"
rm -rf "$image_dir"
mv "$work" "$image_dir"
trap - EXIT
log "sim image: built at ${image_dir} ($(du -sh "${image_dir}/rootfs" | cut -f1) rootfs, $(find "${image_dir}/mirror" -name '*.deb' | wc -l) packages in the mirror)"
emit
