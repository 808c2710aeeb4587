// The host toolchain bootstrap (scripts/host/bootstrap-host.sh, pinned tools in toolchain.lock): the
// first command on every host the project touches, before any other host script. Stock cloud images
// (Verda's Ubuntu) ship no rclone, jq or nfs-common; the bootstrap installs and verifies them, from
// the SFS toolchain cache when there is one, else from the distribution's archive. A day's worker
// normally has them already: its first-boot script installs them in the background (below). On a
// host that has everything it returns at once (docs/host-scripts.md).
import * as fs from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { RemoteCommand, type ConnectionArgs } from "../infra/remote";
import { chain, commandDeadline, scriptCommand } from "./remote";
import { repoPath } from "../infra/repo-root";

/** Files the bootstrap needs next to the other host scripts (upload them with every HostScripts). */
export const BOOTSTRAP_FILES = ["bootstrap-host.sh", "toolchain.lock"];

/** Deadline of one bootstrap run: an apt-get update + install of ~25 MB on a slow archive. */
export const BOOTSTRAP_SECONDS = 900;

/** The pinned tool list next to the bootstrap (scripts/host/toolchain.lock). */
const LOCK_FILE = repoPath("scripts", "host", "toolchain.lock");

/** Where a first-boot install of the pre-mount tools holds its lock (bootstrap-host.sh waits on it; under COMFYUME_ROOT in tests). */
export const FIRST_BOOT_LOCK = "/var/lib/comfyume/first-boot-toolchain.lock";
/** Where the first boot's install of the rest of the toolchain (rclone, jq, ...) holds its lock, after the pre-mount one. */
export const FIRST_BOOT_REST_LOCK = "/var/lib/comfyume/first-boot-toolchain-rest.lock";
/** Its log on the instance. */
export const FIRST_BOOT_LOG = "/var/log/comfyume-first-boot-toolchain.log";

/** [tool, package] of the toolchain.lock lines of one scope: pre-mount (what mounting the SFS needs) or all (the rest). */
export function lockedTools(scope: "pre-mount" | "all", lock = fs.readFileSync(LOCK_FILE, "utf8")): [tool: string, pkg: string][] {
  return lock
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .filter((w) => w.length >= 6 && !w[0].startsWith("#") && w[4] === scope)
    .map((w) => [w[0], w[1]]);
}

/** The bash lines that add to the array `variable` the package of each tool that is not on the PATH. */
function missingChecks(variable: string, tools: [string, string][]): string {
  return tools.map(([tool, pkg]) => `command -v ${tool} >/dev/null 2>&1 || ${variable}+=(${pkg})`).join("\n  ");
}

/**
 * Bash for the first-boot scripts' timings, in tenths of a second from bash's own clock (EPOCHREALTIME; `date` on a
 * bash older than 5): `started=$(tenths)` ... `$(since "$started")s` prints e.g. "3.4s".
 */
export const FIRST_BOOT_CLOCK = `tenths() {
  local us=\${EPOCHREALTIME:-}
  us=\${us//[!0-9]/}
  [[ \${#us} -gt 6 ]] || us=$(date +%s%6N)
  echo "\${us:0:\${#us}-5}"
}
since() {
  local d=$(($(tenths) - $1))
  echo "$((d / 10)).$((d % 10))"
}`;

/**
 * The worker's first-boot script when no identity is pinned: installs the toolchain in the background and returns, so
 * the install runs while the machine finishes booting, SSH comes up and the scripts are uploaded. Two parts, each under
 * its own lock: first what mounting the SFS needs (nfs-common, FIRST_BOOT_LOCK), then the rest (rclone, jq, ...;
 * FIRST_BOOT_REST_LOCK) with the package lists already fetched. `bootstrap-host.sh --pre-mount` waits only for the
 * first, the full bootstrap for both; each then checks the tools as usual and installs (from the SFS cache) or names
 * whatever this install did not manage. Holds no secrets; apt runs without the locks' descriptors, so a daemon a
 * package starts cannot keep them held.
 */
export function toolchainFirstBootScript(preMount = lockedTools("pre-mount"), rest = lockedTools("all")): string {
  return `#!/bin/bash
# comfyume first boot: install the toolchain in the background: first what mounting the SFS needs
# (${preMount.map(([, p]) => p).join(", ")}), then the rest where missing (${rest.map(([, p]) => p).join(", ")}).
set -euo pipefail
lock=\${COMFYUME_ROOT:-}${FIRST_BOOT_LOCK}
rest_lock=\${COMFYUME_ROOT:-}${FIRST_BOOT_REST_LOCK}
log=\${COMFYUME_ROOT:-}${FIRST_BOOT_LOG}
mkdir -p "$(dirname "$lock")" "$(dirname "$log")"
exec 9>"$lock" 8>"$rest_lock"
chmod 644 "$lock" "$rest_lock"
flock -n 9 || exit 0
flock -n 8 || exit 0
updated=false
${FIRST_BOOT_CLOCK}
# install_now PKG...: apt-get update (once) and install; a failure is logged, never fatal (the bootstrap takes over).
install_now() {
  local started
  started=$(tenths)
  echo "comfyume-first-boot: installing $* ($(date -u +%FT%TZ))"
  if ! $updated; then
    apt-get update -qq 8>&- 9>&- || { echo "comfyume-first-boot: apt-get update failed; bootstrap-host.sh installs them (from the SFS cache) or names them"; return 0; }
    updated=true
    echo "comfyume-first-boot: apt-get update in $(since "$started")s"
    started=$(tenths)
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 "$@" >/dev/null 8>&- 9>&- ||
    { echo "comfyume-first-boot: installing $* failed; bootstrap-host.sh installs them (from the SFS cache) or names them"; return 0; }
  echo "comfyume-first-boot: installed $* in $(since "$started")s"
}
(
  missing=()
  ${missingChecks("missing", preMount)}
  if ((\${#missing[@]})); then install_now "\${missing[@]}"; fi
  exec 9>&-
  rest=()
  ${missingChecks("rest", rest)}
  if ((\${#rest[@]})); then install_now "\${rest[@]}"; fi
  echo "comfyume-first-boot: done"
) </dev/null >>"$log" 2>&1 &
echo "comfyume-first-boot: toolchain installing in the background (pid $!, log $log)"
`;
}

/** Where the month's hosts keep the toolchain packages on the SFS (per distribution and architecture below it). */
export function toolchainCacheDir(sfsMount: string): string {
  return `${sfsMount.replace(/\/+$/, "")}/.comfyume/toolchain`;
}

export interface BootstrapCall {
  /** Remote directory holding host/ and lib/. */
  scriptsDir: string;
  /** Non-secret environment of the host's scripts. */
  env: Record<string, string>;
  /** The SFS toolchain cache (read when verified, written after a download); unset on hosts without the SFS. */
  cacheDir?: string;
  /** Only what mounting the SFS needs (nfs-common), for the step before the SFS is mounted. */
  preMount?: boolean;
  /** A host that never mounts the SFS (mello): everything but what mounting it needs (no nfs-common). */
  noSfs?: boolean;
}

/** `timeout … bash <dir>/host/bootstrap-host.sh [--pre-mount | --no-sfs] [--cache DIR] </dev/null` */
export function bootstrapCommand(c: BootstrapCall): string {
  return scriptCommand({
    scriptsDir: c.scriptsDir,
    script: "bootstrap-host.sh",
    args: [...(c.preMount ? ["--pre-mount"] : []), ...(c.noSfs ? ["--no-sfs"] : []), ...(c.cacheDir ? [["--cache", c.cacheDir] as [string, string]] : [])],
    timeoutSeconds: BOOTSTRAP_SECONDS,
    env: c.env,
  });
}

export interface ToolchainArgs {
  connection: ConnectionArgs;
  /** The bootstrap call(s) and, between them, any command they frame (e.g. mount-sfs), run in order. */
  commands: pulumi.Input<string>[];
  /** How many bootstrap runs `commands` holds (each gets its own deadline). */
  bootstrapRuns: number;
  /** Seconds of the other commands in `commands`. */
  otherSeconds?: number[];
  /** Run again when these change (the instance id: a new machine starts from the image). */
  triggers?: pulumi.Input<unknown[]>;
}

/**
 * The RemoteCommand that runs the bootstrap. Its stdout is the bootstrap's last line
 * (`bootstrap: <ok|installed-from-cache|downloaded> <seconds>s <tool=version ...>`): no secrets.
 */
export function toolchainCommand(name: string, a: ToolchainArgs, opts: pulumi.CustomResourceOptions): RemoteCommand {
  return new RemoteCommand(
    name,
    {
      connection: a.connection,
      create: pulumi.all(a.commands).apply((cmds) => (cmds.length === 1 ? cmds[0] : chain(cmds))),
      triggers: a.triggers,
      timeoutSeconds: commandDeadline(...Array<number>(a.bootstrapRuns).fill(BOOTSTRAP_SECONDS), ...(a.otherSeconds ?? [])),
    },
    opts,
  );
}
