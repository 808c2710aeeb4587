// Runs a host script (scripts/host/*.sh) directly with bash, as the admin's machine would, with
// secrets on stdin. Used to seed R2 with the real backup scripts, so the manifests are exactly theirs.
import { spawn } from "node:child_process";
import * as path from "node:path";

export const HOST_SCRIPTS_DIR = path.resolve(__dirname, "../../scripts/host");

export interface ScriptResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runHostScript(
  script: string,
  args: string[],
  opts: { env: Record<string, string>; stdin?: string; timeoutMs?: number },
): Promise<ScriptResult> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [path.join(HOST_SCRIPTS_DIR, script), ...args], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LANG: "C.UTF-8", TMPDIR: process.env.TMPDIR ?? "/tmp", HOME: opts.env.COMFYUME_ROOT ?? "/tmp", ...opts.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${script} timed out\n${stderr}`));
    }, opts.timeoutMs ?? 120_000);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.end(opts.stdin ?? "");
  });
}

/** Throws with the script's stderr tail unless it exited 0. */
export async function mustRunHostScript(...args: Parameters<typeof runHostScript>): Promise<ScriptResult> {
  const r = await runHostScript(...args);
  if (r.code !== 0) throw new Error(`${args[0]} failed (exit ${r.code}):\n${r.stderr.split("\n").slice(-25).join("\n")}`);
  return r;
}
