// Runs a process to completion, collecting its output, with a time limit: the one pattern the
// local cloud and its tests use for every short-lived command (host scripts, ssh, machines).
import { spawn, type SpawnOptions } from "node:child_process";

export interface Collected {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CollectOptions {
  env?: NodeJS.ProcessEnv;
  /** Written to stdin, which is then closed; without it stdin is /dev/null. */
  stdin?: string;
  timeoutMs: number;
  /** Error message when the limit is reached (stderr so far is appended). */
  timeoutMessage: string;
}

/** Resolves with the exit code and output; rejects when it cannot start or runs past the limit (then it is killed). */
export function runCollected(command: string, args: string[], o: CollectOptions): Promise<Collected> {
  return new Promise((resolve, reject) => {
    const spawnOptions: SpawnOptions = { env: o.env, stdio: [o.stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"] };
    const child = spawn(command, args, spawnOptions);
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${o.timeoutMessage}\n${stderr}`));
    }, o.timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    if (o.stdin !== undefined) child.stdin!.end(o.stdin);
  });
}
