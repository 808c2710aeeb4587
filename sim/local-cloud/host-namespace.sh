#!/usr/bin/env bash
# Runs one command "on" a simulated host. Started under `unshare --mount` (a private mount
# namespace), it bind-mounts the host's own directories over the few absolute paths the Pulumi
# program names (e.g. /opt/comfyume, /mnt/sfs, /var/log/comfyume), then runs the command with
# bash. Everything else the host scripts touch is under COMFYUME_ROOT. Nothing outside this
# process tree sees the binds; they vanish with it.
# Usage: host-namespace.sh ROOT DIR... -- COMMAND-STRING
set -euo pipefail
root=$1
shift
dirs=()
while (($#)) && [[ $1 != -- ]]; do
  dirs+=("$1")
  shift
done
shift
for d in "${dirs[@]}"; do
  mkdir -p "${root}${d}"
  # The real mount(8), not the shim that may be first on PATH.
  PATH=/usr/sbin:/usr/bin:/sbin:/bin mount --bind "${root}${d}" "$d"
done
exec bash -c "$1"
