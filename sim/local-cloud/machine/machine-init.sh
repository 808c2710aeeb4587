#!/usr/bin/env bash
# The init of one simulated machine. Started by the local cloud under
#   unshare --mount --pid --uts --fork --propagation slave
# so it is PID 1 of the machine's own pid namespace, with its own hostname and mount table. It
# gives the machine's root (an overlay already mounted at DIR/root) its /proc, /dev (DIR/dev,
# device nodes made by the cloud), /dev/pts, /dev/shm, the stand-ins' state (DIR/state at
# /var/lib/comfyume-sim) and the cloud's volumes (at /run/comfyume-sim/volumes), then chroots
# there and waits, reaping orphans, until the cloud kills it (the machine is gone).
# Usage: machine-init.sh DIR HOSTNAME VOLUMES-DIR
set -euo pipefail
dir=$1 name=$2 volumes=$3
root="${dir}/root"
hostname "$name"
mount -t proc proc "${root}/proc"
mount --bind "${dir}/dev" "${root}/dev"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "${root}/dev/pts"
mount -t tmpfs -o mode=1777,size=64m shm "${root}/dev/shm"
mkdir -p "${root}/var/lib/comfyume-sim" "${root}/run/comfyume-sim/volumes"
mount --bind "${dir}/state" "${root}/var/lib/comfyume-sim"
# rbind: the SFS file systems mounted under VOLUMES-DIR now and later (slave propagation) appear.
mount --rbind "$volumes" "${root}/run/comfyume-sim/volumes"
# PID 1 ignores signals it has no handler for; TERM ends the machine cleanly, KILL always does.
exec chroot "$root" /bin/bash -c 'trap "exit 0" TERM; : >/var/lib/comfyume-sim/init.ready; while :; do sleep 3600 & wait $! || true; done'
