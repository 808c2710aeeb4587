// The host toolchain bootstrap (scripts/host/bootstrap-host.sh, pinned tools in toolchain.lock): the
// first command on every host the project touches, before any other host script. Stock cloud images
// (Verda's Ubuntu) ship no rclone, jq or nfs-common; the bootstrap installs and verifies them, from
// the SFS toolchain cache when there is one (a day's worker downloads nothing), else from the
// distribution's archive. On a host that has everything it returns at once (docs/toolchain.md).
import * as pulumi from "@pulumi/pulumi";
import { RemoteCommand, type ConnectionArgs } from "../infra/remote";
import { chain, commandDeadline, scriptCommand } from "./remote";

/** Files the bootstrap needs next to the other host scripts (upload them with every HostScripts). */
export const BOOTSTRAP_FILES = ["bootstrap-host.sh", "toolchain.lock"];

/** Deadline of one bootstrap run: an apt-get update + install of ~25 MB on a slow archive. */
export const BOOTSTRAP_SECONDS = 900;

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
}

/** `timeout … bash <dir>/host/bootstrap-host.sh [--pre-mount] [--cache DIR] </dev/null` */
export function bootstrapCommand(c: BootstrapCall): string {
  return scriptCommand({
    scriptsDir: c.scriptsDir,
    script: "bootstrap-host.sh",
    args: [...(c.preMount ? ["--pre-mount"] : []), ...(c.cacheDir ? [["--cache", c.cacheDir] as [string, string]] : [])],
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
