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

export interface FirstBootArgs {
  sfsMountTarget: string;
  sfsMount: string;
  /** backup-instance's set name: the identity lives in <sfs>/cache/backups/<set>/latest/. */
  backupSet: string;
}

/** The first-boot script (ASCII only: Verda's startup-script field rejected non-ASCII before). */
export function firstBootScript(a: FirstBootArgs): string {
  const archive = `${a.sfsMount}/cache/backups/${a.backupSet}/latest/ssh-host-keys.tar.gz`;
  return `#!/bin/bash
# comfyume first boot: present the worker's long-lived SSH host identity (kept in the SFS cache)
# before any SSH client connects, so the deployment can pin it. Holds no secrets.
set -u
target=${shellQuote(a.sfsMountTarget)}
mnt=${shellQuote(a.sfsMount)}
archive=${shellQuote(archive)}
log() { logger -t comfyume-first-boot "$*" 2>/dev/null; echo "comfyume-first-boot: $*"; }
command -v mount.nfs >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nfs-common; }
mkdir -p "$mnt"
for attempt in $(seq 1 30); do
  mountpoint -q "$mnt" && break
  mount -t nfs -o nconnect=16 "$target" "$mnt" && break
  log "SFS mount attempt $attempt failed; retrying"
  sleep 10
done
if [ -s "$archive" ]; then
  tmp=$(mktemp -d)
  if tar -xzf "$archive" -C "$tmp" && ls "$tmp"/ssh_host_*_key >/dev/null 2>&1; then
    install -m 600 "$tmp"/ssh_host_*_key /etc/ssh/
    install -m 644 "$tmp"/ssh_host_*_key.pub /etc/ssh/
    systemctl restart ssh 2>/dev/null || systemctl restart sshd
    log "restored the SSH host identity from $archive"
  else
    log "unreadable identity archive $archive; keeping this instance's own keys"
  fi
  rm -rf "$tmp"
else
  log "no identity at $archive; keeping this instance's own keys"
fi
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
