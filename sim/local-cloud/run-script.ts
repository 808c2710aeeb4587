// Runs a host script (scripts/host/*.sh) directly with bash, as the admin's machine would, with
// secrets on stdin. Used to seed R2 with the real backup scripts, so the manifests are exactly theirs.
import * as path from "node:path";
import { runCollected, type Collected } from "./collect";

export const HOST_SCRIPTS_DIR = path.resolve(__dirname, "../../scripts/host");

export type ScriptResult = Collected;

export function runHostScript(
  script: string,
  args: string[],
  opts: { env: Record<string, string>; stdin?: string; timeoutMs?: number },
): Promise<ScriptResult> {
  return runCollected("bash", [path.join(HOST_SCRIPTS_DIR, script), ...args], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LANG: "C.UTF-8", TMPDIR: process.env.TMPDIR ?? "/tmp", HOME: opts.env.COMFYUME_ROOT ?? "/tmp", ...opts.env },
    stdin: opts.stdin ?? "",
    timeoutMs: opts.timeoutMs ?? 120_000,
    timeoutMessage: `${script} timed out`,
  });
}

/** Throws with the script's stderr tail unless it exited 0. */
export async function mustRunHostScript(...args: Parameters<typeof runHostScript>): Promise<ScriptResult> {
  const r = await runHostScript(...args);
  if (r.code !== 0) throw new Error(`${args[0]} failed (exit ${r.code}):\n${r.stderr.split("\n").slice(-25).join("\n")}`);
  return r;
}
