#!/usr/bin/env bash
# Builds the Pulumi CLI, the Node.js language host and the command provider plugin
# from Go modules (for machines that reach the Go module proxy but not get.pulumi.com).
# Binaries land in a per-version cache directory outside the repository and are
# reused when present, so a second run takes a second.
#
# Usage: build-pulumi-from-go.sh <cache-root>
# Versions are pinned in scripts/setup/versions.sh.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/common.sh
source "${here}/../lib/common.sh"
# shellcheck source=./versions.sh
source "${here}/versions.sh"

cache_root=${1:?usage: build-pulumi-from-go.sh <cache-root>}
require_cmd go

pulumi_dir="${cache_root}/pulumi-v${PULUMI_VERSION}"
command_dir="${cache_root}/command-v${COMMAND_PLUGIN_VERSION}"
mkdir -p "${pulumi_dir}/bin" "${command_dir}"

export CGO_ENABLED=0
# Keep Go's build and module caches outside the repository too, shared across versions.
export GOMODCACHE=${GOMODCACHE:-$(go env GOMODCACHE)}
clipboard_replace='github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e'
version_ldflag="-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v${PULUMI_VERSION}"

# A throwaway main module: upstream's go.mod carries replace directives, which
# `go install pkg@version` refuses, so we repeat the non-local one here.
wrapper_module() {
  local dir=$1 name=$2
  mkdir -p "$dir"
  printf 'module localbuild/%s\n\ngo 1.25\n\nreplace %s\n' "$name" "$clipboard_replace" >"${dir}/go.mod"
  : >"${dir}/go.sum"
}

build_cli() {
  local work="${pulumi_dir}/src-cli"
  wrapper_module "$work" pulumicli
  (
    cd "$work"
    retry 3 5 go get "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@v${PULUMI_VERSION}" \
      "github.com/pulumi/pulumi/sdk/v3@v${PULUMI_VERSION}"
    GOFLAGS=-mod=mod go build -trimpath -tags osusergo,grpcnotrace \
      -ldflags "-s -w ${version_ldflag}" -o "${pulumi_dir}/bin/pulumi.partial" \
      github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
  )
  mv "${pulumi_dir}/bin/pulumi.partial" "${pulumi_dir}/bin/pulumi"
}

build_language_host() {
  local work="${pulumi_dir}/src-language-nodejs"
  wrapper_module "$work" languagenodejs
  (
    cd "$work"
    # The language host is an untagged sub-module: pin it to the pkg tag's commit.
    retry 3 5 go get \
      "github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3@${PULUMI_PKG_COMMIT}" \
      "github.com/pulumi/pulumi/pkg/v3@v${PULUMI_VERSION}" \
      "github.com/pulumi/pulumi/sdk/v3@v${PULUMI_VERSION}"
    GOFLAGS=-mod=mod go build -trimpath -tags osusergo,grpcnotrace \
      -ldflags "-s -w ${version_ldflag}" -o "${pulumi_dir}/bin/pulumi-language-nodejs.partial" \
      github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3
  )
  mv "${pulumi_dir}/bin/pulumi-language-nodejs.partial" "${pulumi_dir}/bin/pulumi-language-nodejs"
}

build_command_plugin() {
  local tmpbin="${command_dir}/.gobin"
  mkdir -p "$tmpbin"
  GOBIN="$tmpbin" retry 3 5 go install -trimpath \
    -ldflags "-s -w -X github.com/pulumi/pulumi-command/provider/pkg/version.Version=${COMMAND_PLUGIN_VERSION}" \
    "github.com/pulumi/pulumi-command/provider/cmd/pulumi-resource-command@${COMMAND_PLUGIN_COMMIT}"
  mv "${tmpbin}/pulumi-resource-command" "${command_dir}/pulumi-resource-command"
  rmdir "$tmpbin"
}

if [[ -x "${pulumi_dir}/bin/pulumi" ]]; then
  log "pulumi CLI v${PULUMI_VERSION}: cached at ${pulumi_dir}/bin/pulumi"
else
  step "build pulumi CLI v${PULUMI_VERSION}" build_cli
fi
if [[ -x "${pulumi_dir}/bin/pulumi-language-nodejs" ]]; then
  log "pulumi-language-nodejs v${PULUMI_VERSION}: cached"
else
  step "build pulumi-language-nodejs" build_language_host
fi
if [[ -x "${command_dir}/pulumi-resource-command" ]]; then
  log "pulumi-resource-command v${COMMAND_PLUGIN_VERSION}: cached"
else
  step "build pulumi-resource-command v${COMMAND_PLUGIN_VERSION}" build_command_plugin
fi
step_summary
