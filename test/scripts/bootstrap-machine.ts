// A machine made from the simulated cloud's stock image (COMFYUME_SIM_ROOTFS: Debian bookworm without
// rclone, jq or nfs-common), for the toolchain bootstrap's tests and benchmark. Each command runs in a
// fresh `unshare --mount --pid --fork`: an overlay of the read-only image with this machine's own
// upper directory (so what one command installs, the next sees), /proc, a minimal /dev, an optional
// shared directory bind-mounted at /mnt/sfs (the SFS), then chroot. The network namespace is the
// build machine's, so apt reaches the package mirror on its loopback address; nothing is written
// outside the machine's own directory (and the shared one).
import { runCollected } from "../../sim/local-cloud/collect";
import { cpSync, mkdirSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { REMOTE_PATH } from "../../infra/remote/remote-shell";

export const REPO_SCRIPTS = path.resolve(__dirname, "../../scripts");
/** Where the machine's copy of scripts/host and scripts/lib lives, as on a real host. */
export const MACHINE_SCRIPTS = "/opt/comfyume";
/** Ubuntu's default PATH order: the remote commands' explicit PATH. */
const MACHINE_PATH = REMOTE_PATH;

export interface MachineResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface StockMachine {
  name: string;
  /** The machine's writable layer (what it changed relative to the image). */
  upper: string;
  run(command: string, opts?: { timeoutMs?: number }): Promise<MachineResult>;
}

export interface StockMachineOptions {
  /** The machine's own directory (upper, work and mount point of its overlay). */
  dir: string;
  /** The read-only stock image. */
  rootfs: string;
  /** `deb [trusted=yes] http://… ./`, written to /etc/apt/sources.list.d/comfyume-sim-mirror.list. */
  sourcesLine?: string;
  /** A directory on the build machine seen at /mnt/sfs inside (the SFS, shared by machines). */
  sfs?: string;
}

const SETUP = String.raw`
set -euo pipefail
root=$1 lower=$2 upper=$3 work=$4 sfs=$5 cmd=$6
mount -t overlay overlay -o "lowerdir=$lower,upperdir=$upper,workdir=$work" "$root"
mount -t proc proc "$root/proc"
mount -t tmpfs -o mode=755 tmpfs "$root/dev"
for n in null zero full random urandom tty; do : >"$root/dev/$n"; mount --bind "/dev/$n" "$root/dev/$n"; done
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"; ln -s /proc/self/fd/1 "$root/dev/stdout"; ln -s /proc/self/fd/2 "$root/dev/stderr"
mkdir -p "$root/dev/pts" "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$root/dev/pts" 2>/dev/null && ln -sf pts/ptmx "$root/dev/ptmx" || true
if [[ -n $sfs ]]; then mkdir -p "$root/mnt/sfs"; mount --bind "$sfs" "$root/mnt/sfs"; fi
exec chroot "$root" /usr/bin/env -i PATH="$MACHINE_PATH" HOME=/root LANG=C.UTF-8 TERM=dumb /bin/bash -c "$cmd"
`;

export function stockMachine(name: string, o: StockMachineOptions): StockMachine {
  const upper = path.join(o.dir, "upper");
  const work = path.join(o.dir, "work");
  const root = path.join(o.dir, "root");
  for (const d of [upper, work, root, ...(o.sfs ? [o.sfs] : [])]) mkdirSync(d, { recursive: true });
  // The project's scripts, as the deployment uploads them (host/ and lib/ under one directory).
  for (const sub of ["host", "lib"]) cpSync(path.join(REPO_SCRIPTS, sub), path.join(upper, MACHINE_SCRIPTS.slice(1), sub), { recursive: true });
  if (o.sourcesLine) {
    mkdirSync(path.join(upper, "etc/apt/sources.list.d"), { recursive: true });
    writeFileSync(path.join(upper, "etc/apt/sources.list.d/comfyume-sim-mirror.list"), `${o.sourcesLine}\n`);
  }
  // No init system runs on these machines: packages must not start daemons (rpcbind would bind the
  // build machine's port 111, since the network is shared). The simulated cloud's machines do the same.
  mkdirSync(path.join(upper, "usr/sbin"), { recursive: true });
  writeFileSync(path.join(upper, "usr/sbin/policy-rc.d"), "#!/bin/sh\nexit 101\n", { mode: 0o755 });

  const run = (command: string, opts: { timeoutMs?: number } = {}): Promise<MachineResult> =>
    runCollected("unshare", ["--mount", "--pid", "--fork", "--kill-child", "bash", "-c", SETUP, "machine", root, o.rootfs, upper, work, o.sfs ?? "", command], {
      env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", MACHINE_PATH },
      timeoutMs: opts.timeoutMs ?? 300_000,
      timeoutMessage: `machine ${name}: '${command}' did not finish within ${opts.timeoutMs ?? 300_000} ms`,
    });
  return { name, upper, run };
}

/** The bootstrap as the deployment runs it on a host. */
export function bootstrapCommand(...args: string[]): string {
  return ["bash", `${MACHINE_SCRIPTS}/host/bootstrap-host.sh`, ...args].join(" ");
}

/** The last line of stdout, `bootstrap: <how> <seconds>s <tool=version ...>`, parsed. */
export function bootstrapResult(stdout: string): { how: string; seconds: number; tools: Record<string, string> } | undefined {
  const last = stdout.trimEnd().split("\n").pop() ?? "";
  const m = /^bootstrap: (\S+) ([0-9.]+)s((?: \S+=\S+)*)$/.exec(last);
  if (!m) return undefined;
  const tools = Object.fromEntries(m[3].trim().split(" ").filter(Boolean).map((kv) => kv.split("=") as [string, string]));
  return { how: m[1], seconds: Number(m[2]), tools };
}
