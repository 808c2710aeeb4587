// Reading a stack's config and outputs through the project's Pulumi CLI (scripts/pulumi), or
// from JSON files in the same shape (tests, and runs on machines without the stacks).
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { REPO_ROOT } from "../repo-root";

export type CliRun = (args: string[]) => { status: number; stdout: string; stderr: string };

const repoRoot = REPO_ROOT;

export const pulumiCli: CliRun = (args) => {
  const r = spawnSync(path.join(repoRoot, "scripts/pulumi"), [...args, "--non-interactive"], { encoding: "utf8", maxBuffer: 256 * 1024 * 1024, timeout: 120_000 });
  return { status: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
};

/** `pulumi config --json` entries ({value, objectValue?, secret}) as full key -> parsed value. */
export function parseConfigJson(text: string): Record<string, unknown> {
  const raw = JSON.parse(text) as Record<string, { value?: string; objectValue?: unknown; secret?: boolean } | unknown>;
  const out: Record<string, unknown> = {};
  for (const [key, entry] of Object.entries(raw)) {
    if (!entry || typeof entry !== "object" || !("value" in entry || "objectValue" in entry)) {
      out[key] = entry; // already a plain value (hand-written test files)
      continue;
    }
    const e = entry as { value?: string; objectValue?: unknown; secret?: boolean };
    if (e.secret) continue; // never needed here, and never printed
    if (e.objectValue !== undefined) out[key] = e.objectValue;
    else {
      try {
        out[key] = e.value !== undefined && /^[[{]/.test(e.value.trim()) ? JSON.parse(e.value) : e.value;
      } catch {
        out[key] = e.value;
      }
    }
  }
  return out;
}

export function readStackConfig(stack: string, run: CliRun = pulumiCli): Record<string, unknown> | undefined {
  const r = run(["config", "--stack", stack, "--json"]);
  return r.status === 0 ? parseConfigJson(r.stdout) : undefined;
}

/** Outputs, or {} when the stack has never been up (or cannot be read). */
export function readStackOutputs(stack: string, run: CliRun = pulumiCli): Record<string, unknown> {
  const r = run(["stack", "output", "--stack", stack, "--json"]);
  if (r.status !== 0) return {};
  try {
    return JSON.parse(r.stdout) as Record<string, unknown>;
  } catch {
    return {};
  }
}

export function readJsonFile(file: string): unknown {
  return JSON.parse(readFileSync(file, "utf8"));
}
