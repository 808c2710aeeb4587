// Helpers for running the host scripts over SSH with the project's RemoteCommand (infra/remote):
// pinned host keys, secrets on stdin (never argv or env, which sshd refuses without AcceptEnv), and a
// remote `timeout` around every script, inside the resource's own `timeoutSeconds` deadline.
import * as pulumi from "@pulumi/pulumi";
import type { ConnectionArgs } from "../infra/remote";

/** How to reach one host. `privateKey` must be a Pulumi secret. */
export interface SshTarget {
  host: pulumi.Input<string>;
  port: pulumi.Input<number>;
  user: pulumi.Input<string>;
  /** authorized_keys-format host key; connections are refused when it does not match. */
  hostKey: pulumi.Input<string>;
  privateKey: pulumi.Input<string>;
  dialErrorLimit: number;
  perDialTimeout: number;
}

export function connectionArgs(t: SshTarget): ConnectionArgs {
  return {
    host: t.host,
    port: t.port,
    user: t.user,
    hostKey: t.hostKey,
    privateKey: pulumi.secret(t.privateKey),
    dialErrorLimit: t.dialErrorLimit,
    perDialTimeout: t.perDialTimeout,
  };
}

/** Single-quotes a value for POSIX shells. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** Seconds between a script's `timeout -k 30 <secs>` TERM and its KILL. */
export const SCRIPT_KILL_AFTER_SECONDS = 30;

export interface ScriptCall {
  /** Remote directory holding host/ and lib/. */
  scriptsDir: string;
  /** File name under host/, e.g. `mount-sfs.sh`. */
  script: string;
  args?: (string | [flag: string, value: string])[];
  timeoutSeconds: number;
  /** Non-secret environment (test roots, shims); secrets never go here. */
  env?: Record<string, string>;
  /** Feed stdin to the script (secrets); otherwise stdin is closed. */
  readsStdin?: boolean;
}

/**
 * `timeout -k 30 <secs> env A=b bash <dir>/host/<script> --flag 'value'`. Only plain, non-secret
 * strings reach this command line; it is stored in state and shown in previews.
 */
export function scriptCommand(call: ScriptCall): string {
  const env = Object.entries(call.env ?? {}).map(([k, v]) => `${k}=${shellQuote(v)}`);
  const args = (call.args ?? []).map((a) => (Array.isArray(a) ? `${a[0]} ${shellQuote(a[1])}` : a));
  const parts = [
    "timeout",
    "-k",
    String(SCRIPT_KILL_AFTER_SECONDS),
    String(call.timeoutSeconds),
    ...(env.length ? ["env", ...env] : []),
    "bash",
    shellQuote(`${call.scriptsDir}/host/${call.script}`),
    ...args,
  ];
  return parts.join(" ") + (call.readsStdin ? "" : " </dev/null");
}

/**
 * `timeoutSeconds` for a RemoteCommand running these scripts one after another: each script's own
 * timeout (TERM, then KILL 30 s later) fires first, so a hung script reports which one hung; the
 * resource deadline only catches what the per-script wrapper cannot (a hung shell or connection).
 */
export function commandDeadline(...scriptSeconds: number[]): number {
  return scriptSeconds.reduce((sum, s) => sum + s + SCRIPT_KILL_AFTER_SECONDS, 0) + 60;
}

/** Several script calls run in order; the first failure stops the chain with its exit code. */
export function chain(commands: string[]): string {
  return ["set -e", ...commands].join("\n");
}

/** `KEY=value` lines for a script's stdin, as one Pulumi secret. Values must be single-line. */
export function secretStdin(values: Record<string, pulumi.Input<string>>): pulumi.Output<string> {
  const keys = Object.keys(values).sort();
  return pulumi.secret(
    pulumi.all(keys.map((k) => values[k])).apply((vals) =>
      keys
        .map((k, i) => {
          const v = String(vals[i]);
          if (/[\r\n]/.test(v)) throw new Error(`secret ${k} must be a single line to pass on stdin`);
          return `${k}=${v}\n`;
        })
        .join(""),
    ),
  );
}

/** A script's arguments: bare flags, or [flag, value] pairs (values are quoted). */
export type ScriptArgs = NonNullable<ScriptCall["args"]>;

/** A repeatable option: `flag value` once per value (none for an empty list). */
export function repeated(flag: string, values: Iterable<string>): ScriptArgs {
  return [...values].map((value): [string, string] => [flag, value]);
}

/** Script calls for one host: its scripts directory and non-secret environment are fixed. */
export function scriptRunner(scriptsDir: string, env: Record<string, string>) {
  return (script: string, args: ScriptArgs, timeoutSeconds: number, readsStdin = false): string =>
    scriptCommand({ scriptsDir, script, args, timeoutSeconds, env, readsStdin });
}

/** A pre-flight that proves the script is in place and runs (`--help`), its output discarded. */
export function preflightCommand(run: ReturnType<typeof scriptRunner>, script: string): string {
  return run(script, ["--help"], 60).replace(/ <\/dev\/null$/, " >/dev/null </dev/null");
}
