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
// `ssh-keyscan` records the key the fresh host presents (trust on first use) and every later command
// pins it. Trade-off: whoever answers on that IP in the first seconds is trusted; acceptable only to
// bootstrap. The recorded key is exported so the operator can pin it from then on.
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import { shellQuote } from "./remote";

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

export interface HostKeyScanArgs {
  host: pulumi.Input<string>;
  port: number;
  timeoutSeconds: number;
}

/** Shell for the first-contact scan: retries until the host answers, prints `ssh-ed25519 AAAA...`. */
export function hostKeyScanCommand(host: string, port: number, timeoutSeconds: number): string {
  const attempts = Math.max(1, Math.ceil(timeoutSeconds / 10));
  const h = shellQuote(host);
  return [
    `for attempt in $(seq 1 ${attempts}); do`,
    `  key=$(ssh-keyscan -T 5 -p ${port} -t ed25519 ${h} 2>/dev/null | awk '$2 == "ssh-ed25519" { print $2 " " $3; exit }')`,
    `  if [ -n "$key" ]; then echo "$key"; exit 0; fi`,
    `  sleep 5`,
    `done`,
    `echo "no SSH host key from ${host.replace(/[^A-Za-z0-9.:-]/g, "")}:${port} after ${timeoutSeconds}s" >&2`,
    `exit 1`,
  ].join("\n");
}

/** First-contact host key as a local command resource; `stdout` is the key. */
export function firstContactHostKey(name: string, args: HostKeyScanArgs, opts: pulumi.CustomResourceOptions): command.local.Command {
  return new command.local.Command(
    name,
    {
      create: pulumi.output(args.host).apply((h) => hostKeyScanCommand(h, args.port, args.timeoutSeconds)),
      logging: "stderr",
    },
    opts,
  );
}
