// Helpers for running the host scripts over SSH with @pulumi/command: pinned host keys, secrets on
// stdin (never argv or `environment`, which sshd refuses without AcceptEnv), and a remote `timeout`
// around every script (the command provider cannot kill a hung remote process).
import * as pulumi from "@pulumi/pulumi";
import type * as command from "@pulumi/command";

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

export function connectionArgs(t: SshTarget): command.types.input.remote.ConnectionArgs {
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
    "30",
    String(call.timeoutSeconds),
    ...(env.length ? ["env", ...env] : []),
    "bash",
    shellQuote(`${call.scriptsDir}/host/${call.script}`),
    ...args,
  ];
  return parts.join(" ") + (call.readsStdin ? "" : " </dev/null");
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
