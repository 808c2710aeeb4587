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
repo_tools=$(cd "${here}/../../tools" && pwd)
language_host_marker="${pulumi_dir}/bin/.language-host-source"
project_host_hash=$(cat "${repo_tools}"/pulumi-language-nodejs/*.go "${repo_tools}"/pulumi-language-nodejs/go.* | sha256sum | cut -c1-16)
version_ldflag="-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v${PULUMI_VERSION}"

# A throwaway main module: upstream's go.mod carries replace directives, which
# `go install pkg@version` refuses, so we repeat the non-local one here.
wrapper_module() {
  local dir=$1 name=$2
  mkdir -p "$dir"
  printf 'module localbuild/%s\n\ngo 1.25\n\nreplace %s\n' "$name" "$clipboard_replace" >"${dir}/go.mod"
  : >"${dir}/go.sum"
}

# The CLI's throwaway module (kept in the cache): the project's language host is built in it too, so the
# host gets the CLI's dependency versions and build flags and reuses every package the CLI compiled.
cli_module="${pulumi_dir}/src-cli"
go_tags=osusergo,grpcnotrace

prepare_cli_module() {
  [[ -f "${cli_module}/.resolved-v${PULUMI_VERSION}" ]] && return 0
  wrapper_module "$cli_module" pulumicli
  (
    cd "$cli_module"
    retry 3 5 go get "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@v${PULUMI_VERSION}" \
      "github.com/pulumi/pulumi/sdk/v3@v${PULUMI_VERSION}"
  )
  : >"${cli_module}/.resolved-v${PULUMI_VERSION}"
}

build_cli() {
  prepare_cli_module
  (
    cd "$cli_module"
    GOFLAGS=-mod=mod go build -trimpath -tags "$go_tags" \
      -ldflags "-s -w ${version_ldflag}" -o "${pulumi_dir}/bin/pulumi.partial" \
      github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
  )
  mv "${pulumi_dir}/bin/pulumi.partial" "${pulumi_dir}/bin/pulumi"
}

build_upstream_language_host() {
  local work="${pulumi_dir}/src-language-nodejs"
  wrapper_module "$work" languagenodejs
  (
    cd "$work"
    # An untagged sub-module: reachable only at the pkg tag's commit, which some proxies refuse.
    go get "github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3@${PULUMI_PKG_COMMIT}" \
      "github.com/pulumi/pulumi/pkg/v3@v${PULUMI_VERSION}" \
      "github.com/pulumi/pulumi/sdk/v3@v${PULUMI_VERSION}"
    GOFLAGS=-mod=mod go build -trimpath -tags "$go_tags" \
      -ldflags "-s -w ${version_ldflag}" -o "${pulumi_dir}/bin/pulumi-language-nodejs.partial" \
      github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3
  )
}

# Our own host (tools/pulumi-language-nodejs), compiled in the CLI's module (see prepare_cli_module);
# when that fails (e.g. an API the host uses moved in the CLI's newer dependencies), in its own module.
build_project_language_host() {
  local shellquote
  shellquote=$(awk '$1 == "github.com/kballard/go-shellquote" { print $2 }' "${repo_tools}/pulumi-language-nodejs/go.mod")
  local host_ldflags="-s -w -X main.version=${PULUMI_VERSION}-comfyume"
  if (
    prepare_cli_module
    rm -rf "${cli_module}/project-language-nodejs"
    mkdir -p "${cli_module}/project-language-nodejs"
    cp "${repo_tools}"/pulumi-language-nodejs/*.go "${cli_module}/project-language-nodejs/"
    cd "$cli_module"
    go get "github.com/kballard/go-shellquote@${shellquote}"
    GOFLAGS=-mod=mod go build -trimpath -tags "$go_tags" -ldflags "$host_ldflags" \
      -o "${pulumi_dir}/bin/pulumi-language-nodejs.partial" ./project-language-nodejs
  ) >"${pulumi_dir}/language-host-in-cli-module.log" 2>&1; then
    return 0
  fi
  warn "the project's language host did not build in the CLI's module: $(grep -m1 -E 'error|cannot|undefined' "${pulumi_dir}/language-host-in-cli-module.log" || tail -n1 "${pulumi_dir}/language-host-in-cli-module.log"); building it in tools/pulumi-language-nodejs (its own go.mod)"
  (
    cd "${repo_tools}/pulumi-language-nodejs"
    go build -trimpath -tags "$go_tags" -ldflags "$host_ldflags" \
      -o "${pulumi_dir}/bin/pulumi-language-nodejs.partial" .
  )
}

build_language_host() {
  if [[ -z "${PULUMI_PKG_COMMIT}" ]]; then
    log "upstream language host: no pkg/v${PULUMI_VERSION} tag commit pinned (versions.sh); building the project's host from tools/pulumi-language-nodejs in the CLI's Go module (reuses the packages the CLI compiled)"
    build_project_language_host
    echo "project ${project_host_hash}" >"${language_host_marker}"
  elif build_upstream_language_host >"${pulumi_dir}/language-host-upstream.log" 2>&1; then
    echo "upstream github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3@${PULUMI_PKG_COMMIT}" >"${language_host_marker}"
  else
    warn "upstream language host unavailable: $(grep -m1 -E 'Forbidden|not available|invalid version|error' "${pulumi_dir}/language-host-upstream.log" || tail -n1 "${pulumi_dir}/language-host-upstream.log")"
    log "building the project's language host from tools/pulumi-language-nodejs instead (in the CLI's Go module)"
    build_project_language_host
    echo "project ${project_host_hash}" >"${language_host_marker}"
  fi
  mv "${pulumi_dir}/bin/pulumi-language-nodejs.partial" "${pulumi_dir}/bin/pulumi-language-nodejs"
}

build_command_plugin() {
  local tmpbin="${command_dir}/.gobin" logfile="${command_dir}/build.log"
  mkdir -p "$tmpbin"
  if GOBIN="$tmpbin" go install -trimpath \
    -ldflags "-s -w -X github.com/pulumi/pulumi-command/provider/pkg/version.Version=${COMMAND_PLUGIN_VERSION}" \
    "github.com/pulumi/pulumi-command/provider/cmd/pulumi-resource-command@${COMMAND_PLUGIN_COMMIT}" >"$logfile" 2>&1; then
    mv "${tmpbin}/pulumi-resource-command" "${command_dir}/pulumi-resource-command"
  else
    # Not fatal: the project runs remote scripts through its own ssh2 provider (infra/remote).
    warn "command provider plugin unavailable: $(grep -m1 -E 'Forbidden|not available|invalid version|error' "$logfile" || tail -n1 "$logfile")"
    date -u +%FT%TZ >"${command_dir}/unavailable"
  fi
  rmdir "$tmpbin" 2>/dev/null || true
}

if [[ -x "${pulumi_dir}/bin/pulumi" ]]; then
  log "pulumi CLI v${PULUMI_VERSION}: cached at ${pulumi_dir}/bin/pulumi"
else
  log "building pulumi ${PULUMI_VERSION} from Go modules: not in cache ${pulumi_dir}/bin/pulumi"
  step "build pulumi CLI v${PULUMI_VERSION}" build_cli
fi
# Rebuild the project's host when its source changed; keep an upstream one.
if [[ -x "${pulumi_dir}/bin/pulumi-language-nodejs" ]] &&
  { grep -q '^upstream' "${language_host_marker}" 2>/dev/null || grep -qx "project ${project_host_hash}" "${language_host_marker}" 2>/dev/null; }; then
  log "pulumi-language-nodejs: cached ($(cat "${language_host_marker}"))"
else
  if [[ -x "${pulumi_dir}/bin/pulumi-language-nodejs" ]]; then
    log "building pulumi-language-nodejs ${PULUMI_VERSION}: tools/pulumi-language-nodejs changed (source ${project_host_hash}; cached host: $(cat "${language_host_marker}" 2>/dev/null || echo unknown))"
  else
    log "building pulumi-language-nodejs ${PULUMI_VERSION}: not in cache ${pulumi_dir}/bin/pulumi-language-nodejs"
  fi
  step "build pulumi-language-nodejs" build_language_host
fi
if [[ -x "${command_dir}/pulumi-resource-command" ]]; then
  log "pulumi-resource-command v${COMMAND_PLUGIN_VERSION}: cached"
elif [[ -f "${command_dir}/unavailable" && -z "${COMFYUME_RETRY_COMMAND_PLUGIN:-}" ]]; then
  log "pulumi-resource-command v${COMMAND_PLUGIN_VERSION}: unavailable from the Go module proxy since $(cat "${command_dir}/unavailable") (COMFYUME_RETRY_COMMAND_PLUGIN=1 retries)"
else
  log "building pulumi-resource-command ${COMMAND_PLUGIN_VERSION} from Go modules: not in cache ${command_dir}/pulumi-resource-command"
  step "build pulumi-resource-command v${COMMAND_PLUGIN_VERSION}" build_command_plugin
fi
# The dynamic-provider launcher is "bundled" next to the CLI, as in Pulumi's own tarball;
# it resolves @pulumi/pulumi from the program's directory, so one copy serves every project.
# One change: the program's own node_modules is looked at first, without starting Node just to
# resolve the path (~0.13 s on the way to the first create; the package has no "exports" map, so
# Node would resolve the same file).
cat >"${pulumi_dir}/bin/pulumi-resource-pulumi-nodejs" <<'SH'
#!/bin/sh
PULUMI_DYNAMIC_PROVIDER_SCRIPT_PATH=./node_modules/@pulumi/pulumi/cmd/dynamic-provider/index.js
if [ ! -f "$PULUMI_DYNAMIC_PROVIDER_SCRIPT_PATH" ]; then
    PULUMI_DYNAMIC_PROVIDER_SCRIPT_PATH=$(node -e "console.log(require.resolve('@pulumi/pulumi/cmd/dynamic-provider'))")
fi
if [ -n "$PULUMI_DYNAMIC_PROVIDER_SCRIPT_PATH" ]; then
    exec node "$PULUMI_DYNAMIC_PROVIDER_SCRIPT_PATH" "$@"
fi
SH
chmod +x "${pulumi_dir}/bin/pulumi-resource-pulumi-nodejs"
step_summary
