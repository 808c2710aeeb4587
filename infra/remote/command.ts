// RemoteCommand: run a script on a host over SSH at create/update/delete, as a Pulumi dynamic resource
// (pulumi-nodejs:dynamic/remote:Command). Stands in for @pulumi/command remote.Command, whose provider
// plugin cannot be built here; see docs/remote-commands.md for semantics and differences.
import * as pulumi from "@pulumi/pulumi";
import {
  changedKeys, connectionFailures, type CheckFailure, type ConnectionArgs, type SshConnection, UNKNOWN,
} from "./connection";
import {
  capOutput, lastLines, type Logging, LOGGING_VALUES, redact, secretFragments, trimTrailingNewline, visibleOutputs,
} from "./output";
import { REMOTE_KILL_AFTER_SECONDS, sudoRefusal, sudoRefusedMessage } from "./remote-shell";
import { execShared } from "./pool";
import type { ExecResult } from "./ssh";
import { PROVIDER_VERSION } from "../providers/version";
import { cacheableProvider } from "../provider-code-cache";

export type { Logging } from "./output";
/** Every remote command starts with `export PATH=<REMOTE_PATH>` (docs/remote-commands.md). */
export { REMOTE_PATH } from "./remote-shell";

export interface RemoteCommandInputs {
  connection: SshConnection;
  create?: string;
  /** Runs when inputs change; default: `create` again. */
  update?: string;
  /** Runs at destroy (and on replace, for the old resource) with the connection and stdin from state. */
  delete?: string;
  /** Piped to the command: the channel for secrets (never argv or env). */
  stdin?: string;
  /** Any change replaces the resource (create the new one, then delete the old one). */
  triggers?: unknown[];
  /** Which streams land in the outputs and in failure messages. Default "stdoutAndStderr". */
  logging?: Logging;
  /** Hard deadline per run: remote `timeout` kills the command; the client disconnects shortly after. */
  timeoutSeconds?: number;
  /** Set by the class (PROVIDER_VERSION): a new version updates the state's provider code, running nothing. */
  providerVersion?: string;
}

export interface RemoteCommandOutputs extends RemoteCommandInputs {
  stdout: string;
  stderr: string;
  /** Host key the server presented at the last run (authorized_keys format), for pinning as `hostKey`. */
  presentedHostKey: string;
}

export type RemoteCommandArgs = {
  connection: pulumi.Input<ConnectionArgs>;
} & { [K in Exclude<keyof RemoteCommandInputs, "connection" | "providerVersion">]?: pulumi.Input<RemoteCommandInputs[K]> };

export const COMMAND_INPUT_KEYS = [
  "connection", "create", "update", "delete", "stdin", "triggers", "logging", "timeoutSeconds", "providerVersion",
] as const satisfies readonly (keyof RemoteCommandInputs)[];

/**
 * Changing only these records the new value without running anything (e.g. editing the backup-on-delete script,
 * or a new provider version: the update then only stores the current provider code in state).
 */
const NO_RERUN_KEYS: readonly string[] = ["delete", "logging", "timeoutSeconds", "providerVersion"];

/** Outputs the class declares (as undefined inputs); the engine's own inputs start with "__" (`__provider`). */
const OUTPUT_KEYS: readonly string[] = ["stdout", "stderr", "presentedHostKey"];

/** Why an input is refused; `environment` is documented as refused (sshd drops most names, `env` leaks to ps). */
function unsupportedInputReason(key: string): string {
  if (key === "environment") {
    return "not supported by this provider: sshd drops most variable names. Fix: pass non-secret values as a " +
      "`VAR=value command` prefix in create/update/delete and secrets on `stdin`";
  }
  return `not supported by this provider (supported: ${COMMAND_INPUT_KEYS.filter((k) => k !== "providerVersion").join(", ")})`;
}

export function validateCommandInputs(news: RemoteCommandInputs): CheckFailure[] {
  const failures = connectionFailures(news.connection);
  for (const [key, value] of Object.entries(news)) {
    const ours = (COMMAND_INPUT_KEYS as readonly string[]).includes(key) || OUTPUT_KEYS.includes(key) || key.startsWith("__");
    if (!ours && value !== undefined) failures.push({ property: key, reason: unsupportedInputReason(key) });
  }
  const known = (value: unknown) => value !== undefined && value !== UNKNOWN;
  for (const key of ["create", "update", "delete", "stdin"] as const) {
    if (known(news[key]) && typeof news[key] !== "string") failures.push({ property: key, reason: "must be a string" });
  }
  if (known(news.logging) && !LOGGING_VALUES.includes(news.logging as Logging)) {
    failures.push({ property: "logging", reason: `must be one of ${LOGGING_VALUES.join(", ")}` });
  }
  if (known(news.timeoutSeconds)) {
    const seconds = news.timeoutSeconds as unknown;
    if (typeof seconds !== "number" || !Number.isInteger(seconds) || seconds < 1) {
      failures.push({ property: "timeoutSeconds", reason: "must be a whole number of seconds, at least 1" });
    }
  }
  if (known(news.triggers) && !Array.isArray(news.triggers)) failures.push({ property: "triggers", reason: "must be an array" });
  return failures;
}

/** Only our own fields: inputs the engine adds (`__provider`) must not turn code edits into updates. */
export function pickCommandInputs(values: Partial<RemoteCommandInputs>): RemoteCommandInputs {
  const picked: Record<string, unknown> = {};
  for (const key of COMMAND_INPUT_KEYS) if (values[key] !== undefined) picked[key] = values[key];
  return picked as unknown as RemoteCommandInputs;
}

/**
 * Never suggest `pulumi state delete`: dropping a backup hook from state lets the destroy delete a scratch that
 * was never backed up. The rescue backs the orphaned scratch up first (docs/rescue.md).
 */
const UNREACHABLE_ON_DELETE_HINT =
  ". Nothing was deleted and the resource stays in state. If the host is a day's GPU instance that is gone for good (deleted, evicted or " +
  "out of credit), run `npm run rescue -- --stack <stack>` (docs/rescue.md): it backs up the orphaned scratch and verifies it, then the " +
  "destroy can complete. If it is the month's app host (the rescue does not handle it), start it again (Verda console) or bring it back " +
  "with `scripts/pulumi up --stack <env>-month`, then run the destroy again";

/**
 * The host scripts' progress and stall lines (scripts/lib/progress.sh: "PROGRESS ...", "STALLED: ...") go to the
 * provider's stderr as they arrive, redacted: the engine shows a dynamic provider's stderr during `pulumi up` and
 * `destroy`, so a long backup or restore is not silent until it ends. Every other line stays in the outputs.
 */
function forwardProgressLine(host: unknown, line: string, fragments: readonly string[]): void {
  if (!/ PROGRESS | STALLED: /.test(` ${line}`)) return;
  process.stderr.write(`[remote ${String(host)}] ${redact(line, fragments)}\n`);
}

/** Runs one command; throws a message that names the phase and exit code, never secret inputs. */
export async function runCommandOrThrow(
  phase: "create" | "update" | "delete", command: string, inputs: RemoteCommandInputs,
): Promise<{ stdout: string; stderr: string; presentedHostKey: string }> {
  const fragments = secretFragments(inputs.stdin, inputs.connection.privateKey);
  const { result, presentedHostKey } = await execShared(inputs.connection, {
    command, stdin: inputs.stdin, timeoutSeconds: inputs.timeoutSeconds, user: inputs.connection.user,
    onStderrLine: (line) => forwardProgressLine(inputs.connection.host, line, fragments),
  }).catch((error: Error) => {
    const hint = phase === "delete" ? UNREACHABLE_ON_DELETE_HINT : "";
    throw new Error(`remote ${phase} command on ${inputs.connection.host}: ${error.message}${hint}`);
  });
  const stdout = redact(capOutput(trimTrailingNewline(result.stdout)), fragments);
  const stderr = redact(capOutput(trimTrailingNewline(result.stderr)), fragments);
  const sudoReason = sudoRefusal(result.exitCode, stderr);
  if (sudoReason !== undefined) {
    throw new Error(`remote ${phase} command on ${inputs.connection.host}: ${sudoRefusedMessage(inputs.connection.user ?? "root", sudoReason)}`);
  }
  if (result.exitCode !== 0) throw new Error(failureMessage(phase, inputs, result, stderr));
  return { ...visibleOutputs(inputs.logging, stdout, stderr), presentedHostKey };
}

/**
 * How a run under the remote `timeout` ended when that timeout stopped it: exit 124 after TERM, or (a script
 * that ignores TERM) killed with KILL `REMOTE_KILL_AFTER_SECONDS` later, which `timeout` passes on as the signal
 * itself. A KILL before the limit (the OOM killer, say) is not a timeout.
 */
function timeoutEnding(result: ExecResult, timeoutSeconds: number): string | undefined {
  if (result.exitCode === 124) return "stopped with TERM";
  const killed = (result.signal ?? "").replace(/^SIG/, "") === "KILL" || result.exitCode === 137;
  const reachedLimit = result.elapsedMs === undefined || result.elapsedMs >= timeoutSeconds * 1000;
  if (killed && reachedLimit) return `it ignored TERM and was killed with KILL ${REMOTE_KILL_AFTER_SECONDS}s later`;
  return undefined;
}

/** How a remote run ended, for failure messages ("exited with code 3", "timed out after 60s …", …). */
export function describeExit(result: ExecResult, timeoutSeconds: number | undefined): string {
  if (result.deadlineHit) return `gave no result within its ${timeoutSeconds}s timeout; the client closed the connection`;
  if (result.connectionError) {
    const sent = result.requestSent && !result.channelOpened ? " after the command was sent: it may have run, and is not run again" : "";
    return `lost its connection (${result.connectionError})${sent}`;
  }
  const ending = timeoutSeconds === undefined ? undefined : timeoutEnding(result, timeoutSeconds);
  if (ending) {
    return `timed out after ${timeoutSeconds}s (timeoutSeconds): ${ending}. Fix: raise timeoutSeconds if the work ` +
      "legitimately takes longer, otherwise find out why it hangs";
  }
  if (result.exitCode === null) return `was killed by signal ${result.signal ?? "unknown"}`;
  return `exited with code ${result.exitCode}`;
}

function failureMessage(phase: string, inputs: RemoteCommandInputs, result: ExecResult, redactedStderr: string): string {
  const message = `remote ${phase} command on ${inputs.connection.host} ${describeExit(result, inputs.timeoutSeconds)}`;
  // Even with logging "none": the scripts name their cause on stderr, and stdin/key fragments are redacted.
  if (redactedStderr === "") return message;
  return `${message}\n--- last lines of stderr ---\n${lastLines(redactedStderr)}`;
}

function randomId(): string {
  const { randomBytes } = require("crypto") as typeof import("crypto");
  return randomBytes(8).toString("hex");
}

function emptyRunOutputs(): Pick<RemoteCommandOutputs, "stdout" | "stderr" | "presentedHostKey"> {
  return { stdout: "", stderr: "", presentedHostKey: "" };
}

export const remoteCommandProvider: pulumi.dynamic.ResourceProvider<RemoteCommandInputs, RemoteCommandOutputs> = cacheableProvider("infra/remote/command.ts#remoteCommandProvider", {
  async check(_olds, news) {
    return { inputs: news, failures: validateCommandInputs(news) };
  },

  async diff(_id, olds, news) {
    const changed = changedKeys(COMMAND_INPUT_KEYS, pickCommandInputs(olds), pickCommandInputs(news));
    return { changes: changed.length > 0, replaces: changed.includes("triggers") ? ["triggers"] : [] };
  },

  async create(inputs) {
    const own = pickCommandInputs(inputs);
    const outputs = own.create ? await runCommandOrThrow("create", own.create, own) : emptyRunOutputs();
    return { id: randomId(), outs: { ...own, ...outputs } };
  },

  async update(_id, olds, news) {
    const own = pickCommandInputs(news);
    const changed = changedKeys(COMMAND_INPUT_KEYS, pickCommandInputs(olds), own);
    const command = own.update ?? own.create;
    if (changed.every((key) => NO_RERUN_KEYS.includes(key)) || !command) {
      const kept = command ? visibleOutputs(own.logging, olds.stdout ?? "", olds.stderr ?? "") : emptyRunOutputs();
      return { outs: { ...own, ...kept, presentedHostKey: olds.presentedHostKey ?? "" } };
    }
    return { outs: { ...own, ...(await runCommandOrThrow("update", command, own)) } };
  },

  async delete(_id, props) {
    // State, not program inputs: the host and stdin as they were when this resource last ran.
    const own = pickCommandInputs(props);
    if (own.delete) await runCommandOrThrow("delete", own.delete, own);
  },

  async read(id, props) {
    return { id, props };
  },
});

/**
 * Runs `create` on the host at creation, `update` (or `create`) when inputs change, `delete` at destroy.
 * `connection` and `stdin` are stored as secrets automatically (like @pulumi/command); wrapping them in
 * `pulumi.secret(...)` yourself also keeps them out of previews. If the script prints secrets, add
 * `additionalSecretOutputs: ["stdout", "stderr"]` or use `logging: "none"`.
 */
export class RemoteCommand extends pulumi.dynamic.Resource {
  declare readonly stdout: pulumi.Output<string>;
  declare readonly stderr: pulumi.Output<string>;
  declare readonly presentedHostKey: pulumi.Output<string>;

  constructor(name: string, args: RemoteCommandArgs, opts?: pulumi.CustomResourceOptions) {
    const props = {
      ...args,
      connection: pulumi.secret(args.connection),
      stdin: args.stdin === undefined ? undefined : pulumi.secret(args.stdin),
      providerVersion: PROVIDER_VERSION,
      stdout: undefined,
      stderr: undefined,
      presentedHostKey: undefined,
    };
    const secretOutputs = { additionalSecretOutputs: ["connection", "stdin"] };
    super(remoteCommandProvider, name, props, pulumi.mergeOptions(opts, secretOutputs), "remote", "Command");
  }
}
