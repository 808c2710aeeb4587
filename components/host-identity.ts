// SSH host key pinning for Verda instances. A new instance's host key is unknown before it boots.
//
// Pinned mode (gpu.hostPublicKey set; the normal case): the worker keeps one long-lived SSH identity
// in the SFS cache (backup-instance saves /etc/ssh/ssh_host_* hourly; seed-sfs restores the cache
// from R2 each month). A first-boot startup script - no secrets, Verda stores it in plaintext -
// mounts the SFS and installs that identity before sshd is used, so every connection from the very
// first dial verifies the configured public key; dial retries cover the boot window. Trade-off: it
// needs one earlier backup of the identity, and a first-boot failure surfaces as a host-key mismatch.
//
// First-contact mode (no gpu.hostPublicKey; the first day ever, and the throwaway seeding loader):
// one RemoteCommand connects without a pinned key, runs `true`, and records the key the fresh host
// presented (trust on first use); every later connection to that host pins it. Trade-off: whoever
// answers on that address in the first seconds is trusted; acceptable only to bootstrap. The
// recorded key is exported so the operator can pin it from then on.
import * as pulumi from "@pulumi/pulumi";
import { RemoteCommand } from "../infra/remote";
import { shellQuote, type SshTarget } from "./remote";
import { FIRST_BOOT_CLOCK } from "./toolchain";

export interface FirstBootArgs {
  sfsMountTarget: string;
  sfsMount: string;
  /**
   * backup-instance's set name. Its layout under <sfs>/cache/backups/<set>/: one directory per
   * snapshot (<stamp>/ with ssh-host-keys.tar.gz and MANIFEST.sha256) and `latest`, a FILE holding
   * the stamp of the newest snapshot.
   */
  backupSet: string;
}

/**
 * The first-boot script (ASCII only: Verda's startup-script field rejected non-ASCII before). It
 * holds no secrets: Verda stores it in plaintext. COMFYUME_ROOT and the *_CMD variables are unset at
 * a real first boot; they exist so tests can run this exact text in a sandbox, like the host scripts.
 */
export function firstBootScript(a: FirstBootArgs): string {
  const setDir = `${a.sfsMount}/cache/backups/${a.backupSet}`;
  return `#!/bin/bash
# comfyume first boot: present the worker's long-lived SSH host identity (kept in the SFS cache)
# before any SSH client connects, so the deployment can pin it. Holds no secrets.
# Exit 0: identity installed; 1: not installed, this instance keeps its own keys (pinned SSH fails).
set -euo pipefail
target=${shellQuote(a.sfsMountTarget)}
mnt=${shellQuote(a.sfsMount)}
set_dir=${shellQuote(setDir)}
etc_ssh="\${COMFYUME_ROOT:-}/etc/ssh"
mount_cmd=\${MOUNT_CMD:-mount}
mountpoint_cmd=\${MOUNTPOINT_CMD:-mountpoint}
systemctl_cmd=\${SYSTEMCTL_CMD:-systemctl}
log() {
  logger -t comfyume-first-boot "$*" 2>/dev/null || true
  echo "comfyume-first-boot: $*"
}
give_up() {
  log "$*; keeping this instance's own keys"
  exit 1
}
${FIRST_BOOT_CLOCK}
# The toolchain's pre-mount step (bootstrap-host.sh --pre-mount, not uploaded yet at first boot):
# stock images lack mount.nfs; this one install downloads, before the SFS (and its cache) is mounted.
if ! command -v mount.nfs >/dev/null 2>&1; then
  log "mount.nfs missing: installing nfs-common (apt-get update + install)"
  started=$(tenths)
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=300 nfs-common >/dev/null; } ||
    give_up "cannot install nfs-common from the apt sources (network? apt-get update?)"
  command -v mount.nfs >/dev/null 2>&1 || give_up "nfs-common installed but mount.nfs is still missing"
  log "installed nfs-common (mount.nfs) in $(since "$started")s"
fi
mkdir -p "$mnt"
for attempt in $(seq 1 30); do
  "$mountpoint_cmd" -q "$mnt" && break
  "$mount_cmd" -t nfs -o nconnect=16 "$target" "$mnt" && break
  log "SFS mount attempt $attempt failed; retrying"
  sleep 10
done
"$mountpoint_cmd" -q "$mnt" || give_up "SFS $target not mounted at $mnt"
# backup-instance writes each snapshot to <set>/<stamp>/ and the newest stamp into the file <set>/latest.
[ -f "$set_dir/latest" ] || give_up "no snapshot of this backup set: $set_dir/latest is missing"
stamp=$(head -n 1 "$set_dir/latest")
[[ $stamp =~ ^[A-Za-z0-9][A-Za-z0-9._:-]*$ ]] || give_up "$set_dir/latest does not name a snapshot"
snap="$set_dir/$stamp"
archive="$snap/ssh-host-keys.tar.gz"
[ -s "$archive" ] || give_up "no identity at $archive"
# Only keys whose bytes match the snapshot's manifest are installed (a torn copy would lock us out).
(cd "$snap" && grep -E '^[0-9a-f]{64} [ *]ssh-host-keys[.]tar[.]gz$' MANIFEST.sha256 | sha256sum --quiet -c -) ||
  give_up "$archive does not match $snap/MANIFEST.sha256"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar -xzf "$archive" -C "$tmp" || give_up "unreadable identity archive $archive"
compgen -G "$tmp/ssh_host_*_key" >/dev/null || give_up "no ssh_host_*_key in $archive"
for key in "$tmp"/ssh_host_*_key; do
  [ -s "$key.pub" ] || give_up "$archive holds $(basename "$key") without its .pub"
done
install -m 600 "$tmp"/ssh_host_*_key "$etc_ssh"/
install -m 644 "$tmp"/ssh_host_*_key.pub "$etc_ssh"/
"$systemctl_cmd" restart ssh 2>/dev/null || "$systemctl_cmd" restart sshd 2>/dev/null ||
  log "sshd not restarted; it reads the restored keys when it starts"
log "restored the SSH host identity of snapshot $stamp from $archive"
`;
}

export interface FirstContactArgs {
  /** How to reach the fresh host; `hostKey` is what this resource finds out. */
  target: Omit<SshTarget, "hostKey">;
  /** How long to keep dialing a host that is still booting (config `timeouts.hostKeyScanSeconds`). */
  waitSeconds: number;
  /** Record the key again when these change (the instance id: a replaced host has new keys). */
  triggers: pulumi.Input<unknown[]>;
}

/** Longest pause between two dials (infra/remote/ssh.ts backs off 0.5 s, doubling, up to 8 s). */
const MAX_DIAL_BACKOFF_SECONDS = 8;

/**
 * Dial attempts for first contact: enough that a host refusing connections while it boots is tried
 * for at least `waitSeconds`, and never fewer than the other connections get.
 */
export function firstContactDialLimit(waitSeconds: number, dialErrorLimit: number): number {
  return Math.max(dialErrorLimit, Math.ceil(waitSeconds / MAX_DIAL_BACKOFF_SECONDS));
}

/**
 * The first-contact connection: authenticates (the key may arrive through cloud-init after sshd is
 * up; retries cover that) and accepts whatever host key is presented. `presentedHostKey` is the key.
 */
export function firstContactHostKey(name: string, args: FirstContactArgs, opts: pulumi.CustomResourceOptions): RemoteCommand {
  const t = args.target;
  return new RemoteCommand(
    name,
    {
      // No hostKey: the one connection that accepts any key.
      connection: {
        host: t.host,
        port: t.port,
        user: t.user,
        privateKey: pulumi.secret(t.privateKey),
        dialErrorLimit: firstContactDialLimit(args.waitSeconds, t.dialErrorLimit),
        perDialTimeout: t.perDialTimeout,
      },
      create: "true",
      triggers: args.triggers,
      timeoutSeconds: 60,
    },
    opts,
  );
}
