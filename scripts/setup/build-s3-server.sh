#!/usr/bin/env bash
# Builds the S3 server that stands in for Cloudflare R2 in the tests and the simulated cloud:
# versitygw (Versity S3 Gateway, Apache-2.0; a real S3 server with SigV4 checks and a POSIX
# backend that keeps each object as a plain file) from Go modules, into a per-version cache
# directory outside the repository, reused when present (a warm run takes well under a second).
#
# Usage: build-s3-server.sh [<cache-root>]   (default: ${COMFYUME_CACHE:-~/.cache/comfyume-infra})
# Prints the binary's path on stdout. The version is pinned in scripts/setup/versions.sh.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/common.sh
source "${here}/../lib/common.sh"
# shellcheck source=./versions.sh
source "${here}/versions.sh"

cache_root=${1:-${COMFYUME_CACHE:-${XDG_CACHE_HOME:-${HOME}/.cache}/comfyume-infra}}
install_dir="${cache_root}/versitygw-v${VERSITYGW_VERSION}"
binary="${install_dir}/versitygw"

installed_version() {
  "$binary" --version 2>/dev/null | sed -n 's/^Version *: *//p'
}

build_versitygw() {
  require_cmd go
  mkdir -p "$install_dir"
  # GOBIN is a temporary directory so an interrupted build never leaves a half-written binary behind.
  local staging
  staging=$(mktemp -d "${install_dir}/.staging.XXXXXX")
  CGO_ENABLED=0 GOBIN="$staging" retry 3 5 go install -trimpath \
    -ldflags "-s -w -X main.Version=v${VERSITYGW_VERSION} -X main.Build=go-module" \
    "github.com/versity/versitygw/cmd/versitygw@v${VERSITYGW_VERSION}"
  mv -f "${staging}/versitygw" "$binary"
  rm -rf "$staging"
  COMFYUME_STEP_RESULT=changed
}

ensure_versitygw() {
  if [[ -x "$binary" && "$(installed_version)" == "v${VERSITYGW_VERSION}" ]]; then
    COMFYUME_STEP_RESULT=unchanged
    return 0
  fi
  log "versitygw v${VERSITYGW_VERSION}: building from Go modules (first time: about 3 min)"
  build_versitygw
  [[ "$(installed_version)" == "v${VERSITYGW_VERSION}" ]] ||
    die "versitygw at ${binary} reports '$(installed_version)', expected v${VERSITYGW_VERSION}; remove ${install_dir} and re-run npm run setup"
}

step "versitygw v${VERSITYGW_VERSION} (S3 server for tests)" ensure_versitygw
printf '%s\n' "$binary"
