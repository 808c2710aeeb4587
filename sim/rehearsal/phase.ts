// What every rehearsal driver (run.ts, adopt.ts, serverless.ts) does the same way: time a phase and
// record it in the table, and write or create a stack's settings file.
import * as fs from "node:fs";
import * as path from "node:path";
import type { LocalCloud } from "../local-cloud";
import type { PulumiRunner } from "./pulumi-runner";
import type { PhaseRecord } from "./report";
import { stackFile } from "./stack-files";

/** Times a phase, its cloud waits and simulated cost; a failed check is recorded, then rethrown. */
export async function runPhase(
  cloud: LocalCloud,
  phases: PhaseRecord[],
  say: (line: string) => void,
  name: string,
  body: () => Promise<string[]>,
): Promise<void> {
  say(`▶ ${name}`);
  const started = Date.now();
  const waited = cloud.waitedOnCloudMs();
  const cost = cloud.verda.state().total_cost;
  const record = (verified: string[], ok: boolean) => {
    const wallMs = Date.now() - started;
    phases.push({ phase: name, wallMs, cloudWaitMs: cloud.waitedOnCloudMs() - waited, cost: cloud.verda.state().total_cost - cost, verified, ok });
    say(`${ok ? "✔" : "✘"} ${name} in ${(wallMs / 1000).toFixed(1)} s${verified.length ? `: ${verified.join("; ")}` : ""}`);
  };
  try {
    record(await body(), true);
  } catch (e) {
    record([`FAILED: ${(e as Error).message}`], false);
    throw e;
  }
}

/** Replaces the stack's plain settings; the salt and secrets the CLI wrote stay. */
export function writeStack(projectDir: string, title: string, stack: string, config: object): void {
  const file = path.join(projectDir, "stacks", `Pulumi.${stack}.yaml`);
  const current = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
  fs.writeFileSync(file, stackFile(`${title}: ${stack}`, config, current));
}

/** `stack init`, the plain settings, then each secret through the CLI on stdin (never on a command line). */
export async function initStack(pulumi: PulumiRunner, projectDir: string, title: string, stack: string, config: object, secrets: Record<string, string>): Promise<void> {
  await pulumi.run(`init ${stack}`, ["stack", "init", stack]);
  writeStack(projectDir, title, stack, config);
  for (const [key, value] of Object.entries(secrets)) {
    await pulumi.run(`secret ${key}`, ["config", "set", "--stack", stack, "--secret", key], { stdin: value });
  }
}
