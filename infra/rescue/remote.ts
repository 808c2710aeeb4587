// The SSH side of a rescue, on the rescue instance: pin its host key at first contact, upload the
// host scripts (with scripts/lib, one archive), make sure the backup's tools are there, run prepare-scratch
// (never formats: --expect-data) and backup-mello on the scratch's inputs and outputs, exactly as
// the worker's backup hook does. Secrets travel on stdin only; failures carry the redacted stderr.
import { hostScriptFiles, LOCAL_SCRIPTS_DIR, SCRIPT_MODE } from "../../components/host-scripts";
import { scriptCommand, shellQuote } from "../../components/remote";
import { BOOTSTRAP_FILES, BOOTSTRAP_SECONDS, bootstrapCommand } from "../../components/toolchain";
import { scratchBackupArgs, shrinkArgs } from "../../components/worker-backup-hooks";
import { describeExit } from "../remote/command";
import type { SshConnection } from "../remote/connection";
import { uploadArchive } from "../remote/copy";
import { lastLines, redact, secretFragments } from "../remote/output";
import { execOnce, withSshSession } from "../remote/ssh";
import type { SshSettings } from "./state";

export const RESCUE_SCRIPTS = ["prepare-scratch.sh", "backup-mello.sh", ...BOOTSTRAP_FILES];

export interface RescueHost {
  /** Pinned after first contact; every later connection refuses any other key. */
  connection: SshConnection;
  presentedHostKey: string;
}

export interface RescuePaths {
  scriptsDir: string;
  scratchMount: string;
  /** Non-secret environment for the scripts (the stack's hostEnv). */
  hostEnv: Record<string, string>;
}

export interface BackupSpec {
  endpoint: string;
  bucket: string;
  /** `R2_ACCESS_KEY_ID=…\nR2_SECRET_ACCESS_KEY=…\n`, sent on stdin. */
  secretsStdin: string;
  timeoutSeconds: number;
  /** Passed only when set, as the worker's hook does (`backup.shrinkTolerance` / `backup.acceptShrink`). */
  shrinkTolerance?: number;
  acceptShrink?: string[];
  /** A day-scoped scratch started blank that morning: no size baseline (backup-mello --fresh-volume). */
  scratchStartsBlank?: boolean;
}

/** First contact: the one connection that accepts any host key; it records the key to pin. */
export async function pinHostKey(host: string, ssh: SshSettings, log: (line: string) => void): Promise<RescueHost> {
  const open: SshConnection = { host, port: ssh.port, user: ssh.user, privateKey: ssh.privateKey, dialErrorLimit: Math.max(ssh.dialErrorLimit, 20), perDialTimeout: ssh.perDialTimeout };
  const presentedHostKey = await withSshSession(open, async (s) => s.presentedHostKey, { log: (l) => log(`  ${l}`) });
  return { connection: { ...open, hostKey: presentedHostKey, dialErrorLimit: ssh.dialErrorLimit }, presentedHostKey };
}

/** Runs one command; resolves its redacted output, or throws with the exit status and the redacted stderr tail. */
export async function runRemote(host: RescueHost, what: string, command: string, opts: { stdin?: string; timeoutSeconds: number }): Promise<{ stdout: string; stderr: string }> {
  const result = await withSshSession(host.connection, (s) => execOnce(s.client, { command, stdin: opts.stdin, timeoutSeconds: opts.timeoutSeconds, user: host.connection.user }));
  const fragments = secretFragments(opts.stdin, host.connection.privateKey);
  const stderr = redact(result.stderr.trimEnd(), fragments);
  if (result.exitCode === 0) return { stdout: redact(result.stdout, fragments), stderr };
  throw new Error(`${what} on the rescue instance ${describeExit(result, opts.timeoutSeconds)}${stderr ? `\n--- last lines of stderr ---\n${lastLines(stderr, 15)}` : ""}`);
}

/** The scripts as one checksummed archive in one command, as every other host gets them (infra/remote/copy.ts). */
export async function uploadScripts(host: RescueHost, paths: RescuePaths): Promise<number> {
  const files = hostScriptFiles(LOCAL_SCRIPTS_DIR, paths.scriptsDir, RESCUE_SCRIPTS);
  await uploadArchive(host.connection, files, SCRIPT_MODE).catch((error: Error) => {
    throw new Error(`uploading the rescue scripts to ${host.connection.host}: ${error.message}`);
  });
  return Object.keys(files).length;
}

/** The project's toolchain bootstrap, as on every other host: a stock image lacks rclone and jq (no SFS here: no cache). */
export async function ensureTools(host: RescueHost, paths: RescuePaths): Promise<void> {
  await runRemote(host, "the toolchain bootstrap (bootstrap-host.sh)", bootstrapCommand({ scriptsDir: paths.scriptsDir, env: paths.hostEnv }), { timeoutSeconds: BOOTSTRAP_SECONDS + 60 });
}

export function prepareScratchCommand(paths: RescuePaths, volumeId: string, timeoutSeconds: number): string {
  return scriptCommand({
    scriptsDir: paths.scriptsDir,
    script: "prepare-scratch.sh",
    args: [["--volume-id", volumeId], ["--mount-point", paths.scratchMount], "--expect-data", "--no-fstab"],
    timeoutSeconds,
    env: paths.hostEnv,
  });
}

/** The same backup-mello call as the worker's backup-before-delete hook (components/gpu-worker.ts). */
export function backupCommand(paths: RescuePaths, b: BackupSpec): string {
  return scriptCommand({
    scriptsDir: paths.scriptsDir,
    script: "backup-mello.sh",
    args: scratchBackupArgs({
      endpoint: b.endpoint,
      bucket: b.bucket,
      scratchMount: paths.scratchMount,
      scratchStartsBlank: !!b.scratchStartsBlank,
      shrink: shrinkArgs(b.shrinkTolerance, b.acceptShrink ?? []),
    }),
    timeoutSeconds: b.timeoutSeconds,
    env: paths.hostEnv,
    readsStdin: true,
  });
}

/** Unmounts the scratch (best effort) so the detach at delete finds a clean filesystem. */
export function unmountCommand(paths: RescuePaths): string {
  return `sync; umount ${shellQuote(paths.scratchMount)} 2>/dev/null || true`;
}
