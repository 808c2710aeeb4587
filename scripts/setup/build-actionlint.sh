#!/usr/bin/env bash
# Installs actionlint (the GitHub Actions workflow checker used by the test suite) from the Go
# module proxy into a per-version cache directory, and reuses it when present.
#
# Usage: build-actionlint.sh [<cache-root>]   (default: ${COMFYUME_CACHE:-~/.cache/comfyume-infra})
# Prints the binary's path on stdout.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/common.sh
source "${here}/../lib/common.sh"

ACTIONLINT_VERSION=1.7.12
cache_root=${1:-${COMFYUME_CACHE:-${XDG_CACHE_HOME:-${HOME}/.cache}/comfyume-infra}}
install_dir="${cache_root}/actionlint-v${ACTIONLINT_VERSION}"
binary="${install_dir}/actionlint"

installed_version() {
  "$binary" -version 2>/dev/null | head -n 1
}

install_actionlint() {
  require_cmd go
  mkdir -p "$install_dir"
  # GOBIN is a temporary directory so an interrupted build never leaves a half-written binary behind.
  local staging
  staging=$(mktemp -d "${install_dir}/.staging.XXXXXX")
  CGO_ENABLED=0 GOBIN="$staging" retry 3 5 go install -trimpath -ldflags "-s -w" \
    "github.com/rhysd/actionlint/cmd/actionlint@v${ACTIONLINT_VERSION}"
  mv -f "${staging}/actionlint" "$binary"
  rm -rf "$staging"
  COMFYUME_STEP_RESULT=changed
}

ensure_actionlint() {
  if [[ -x "$binary" && "$(installed_version)" == "v${ACTIONLINT_VERSION}"* ]]; then
    COMFYUME_STEP_RESULT=unchanged
    return 0
  fi
  if [[ -x "$binary" ]]; then
    log "building actionlint ${ACTIONLINT_VERSION} from Go modules: the cached ${binary} reports '$(installed_version)'"
  else
    log "building actionlint ${ACTIONLINT_VERSION} from Go modules: not in cache ${binary}"
  fi
  install_actionlint
  [[ "$(installed_version)" == "v${ACTIONLINT_VERSION}"* ]] || die "actionlint at ${binary} reports '$(installed_version)', expected v${ACTIONLINT_VERSION}"
}

step "actionlint v${ACTIONLINT_VERSION}" ensure_actionlint
printf '%s\n' "$binary"
