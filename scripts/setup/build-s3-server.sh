#!/usr/bin/env bash
# Builds the S3 server that stands in for Cloudflare R2 in the tests and the simulated cloud:
# versitygw (Versity S3 Gateway, Apache-2.0; a real S3 server with SigV4 checks and a POSIX
# backend that keeps each object as a plain file) from Go modules, into a per-version cache
# directory outside the repository, reused when present (a warm run takes well under a second).
#
# Usage: build-s3-server.sh [<cache-root>]   (default: ${COMFYUME_CACHE:-~/.cache/comfyume-infra})
# Prints the binary's path on stdout. Versions are pinned in scripts/setup/versions.sh: versitygw,
# and the newer fasthttp it is built with (a dependency raised in a throwaway main module; no code changed).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/common.sh
source "${here}/../lib/common.sh"
# shellcheck source=./versions.sh
source "${here}/versions.sh"

cache_root=${1:-${COMFYUME_CACHE:-${XDG_CACHE_HOME:-${HOME}/.cache}/comfyume-infra}}
install_dir="${cache_root}/versitygw-v${VERSITYGW_VERSION}-fasthttp-v${VERSITYGW_FASTHTTP_VERSION}"
binary="${install_dir}/versitygw"

build_tag="v${VERSITYGW_VERSION}+fasthttp-v${VERSITYGW_FASTHTTP_VERSION}"

installed_version() {
  "$binary" --version 2>/dev/null | awk '$1 == "Version" { v = $NF } $1 == "Build" { b = $NF } END { print v "+" b }'
}

build_versitygw() {
  require_cmd go
  mkdir -p "$install_dir"
  local work="${install_dir}/src"
  local staging="${work}/versitygw.partial"
  rm -rf "$work"
  mkdir -p "$work"
  printf 'module localbuild/versitygw\n\ngo 1.26\n' >"${work}/go.mod"
  (
    cd "$work"
    export CGO_ENABLED=0
    retry 3 5 go get "github.com/versity/versitygw/cmd/versitygw@v${VERSITYGW_VERSION}" "github.com/valyala/fasthttp@v${VERSITYGW_FASTHTTP_VERSION}"
    go build -trimpath -ldflags "-s -w -X main.Version=v${VERSITYGW_VERSION} -X main.Build=fasthttp-v${VERSITYGW_FASTHTTP_VERSION}" \
      -o "$staging" github.com/versity/versitygw/cmd/versitygw
  )
  # Renamed into place only when complete: an interrupted build never leaves a half-written binary.
  mv -f "$staging" "$binary"
  rm -rf "$work"
  COMFYUME_STEP_RESULT=changed
}

ensure_versitygw() {
  if [[ -x "$binary" && "$(installed_version)" == "$build_tag" ]]; then
    COMFYUME_STEP_RESULT=unchanged
    return 0
  fi
  if [[ -x "$binary" ]]; then
    log "versitygw ${build_tag}: building from Go modules (3-9 min): the cached ${binary} reports '$(installed_version)'"
  else
    log "versitygw ${build_tag}: building from Go modules (3-9 min): not in cache ${binary}; the tests' S3 server standing in for R2"
  fi
  build_versitygw
  [[ "$(installed_version)" == "$build_tag" ]] ||
    die "versitygw at ${binary} reports '$(installed_version)', expected ${build_tag}; remove ${install_dir} and re-run npm run setup"
}

step "versitygw ${build_tag} (S3 server for tests)" ensure_versitygw
printf '%s\n' "$binary"
