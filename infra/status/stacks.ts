// The stacks as the Pulumi backend holds them, read through the project's CLI (scripts/pulumi:
// its backend and passphrase defaults, or the ones the operator exported). Calls run in parallel
// and each is bounded in time; secrets revealed here stay in memory and are never printed.
import { spawn } from "node:child_process";
import path from "node:path";
import { idsInStackExport } from "../money/owned";
import { parseConfigJson } from "../money/stack-io";
import { failure } from "./probe";
import type { Layer } from "../money/types";
import { REPO_ROOT } from "../repo-root";

export type AsyncCli = (args: string[]) => Promise<{ status: number; stdout: string; stderr: string }>;



/** scripts/pulumi, optionally for another project directory (-C), never interactive, killed after `timeoutMs`. */
export function pulumiCliAsync(projectDir?: string, timeoutMs = 60_000): AsyncCli {
  return (args) =>
    new Promise((resolve) => {
      const child = spawn(path.join(REPO_ROOT, "scripts/pulumi"), [...(projectDir ? ["-C", projectDir] : []), ...args, "--non-interactive"], { stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => (stdout += d));
      child.stderr.on("data", (d) => (stderr += d));
      const timer = setTimeout(() => {
        stderr += `\ntimed out after ${timeoutMs / 1000} s`;
        child.kill("SIGKILL");
      }, timeoutMs);
      child.on("error", (e) => {
        clearTimeout(timer);
        resolve({ status: -1, stdout, stderr: e.message });
      });
      child.on("close", (code) => {
        clearTimeout(timer);
        resolve({ status: code ?? -1, stdout, stderr });
      });
    });
}

/** The last lines of a failed CLI call: they name the cause (no secrets: stdout is never shown). */
const lastLines = (stderr: string) => stderr.trim().split("\n").filter(Boolean).slice(-2).join(" ") || "no message";

export interface StackEntry {
  name: string;
  /** The operator's environment (`<env>-month`, `<env>-day`); undefined for idle. */
  environment?: string;
  layer: Layer;
  resourceCount: number;
  lastUpdate?: string;
  updateInProgress: boolean;
}

/** `idle`, `<env>-month`, `<env>-day`; other stacks are not phases and are left out. */
export function classifyStack(name: string): { environment?: string; layer: Layer } | undefined {
  if (name === "idle" || name.endsWith("-idle")) return { layer: "idle" };
  const m = /^(.+)-(month|day)$/.exec(name);
  return m ? { environment: m[1], layer: m[2] as Layer } : undefined;
}

export async function listStacks(cli: AsyncCli): Promise<StackEntry[]> {
  const r = await cli(["stack", "ls", "--json"]);
  if (r.status !== 0) {
    throw failure(`scripts/pulumi stack ls failed: ${lastLines(r.stderr)}`, "check PULUMI_BACKEND_URL and the passphrase (README, Running Pulumi), then run scripts/pulumi stack ls");
  }
  const listed = JSON.parse(r.stdout) as Array<{ name: string; lastUpdate?: string; updateInProgress?: boolean; resourceCount?: number }>;
  const out: StackEntry[] = [];
  for (const s of listed) {
    const name = s.name.split("/").pop()!;
    const kind = classifyStack(name);
    if (kind) out.push({ name, ...kind, resourceCount: s.resourceCount ?? 0, lastUpdate: s.lastUpdate, updateInProgress: !!s.updateInProgress });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

export interface StackState {
  /** Every Verda-shaped id the state holds (what the sweep counts as owned). */
  ids: Set<string>;
  resourceCount: number;
  /** The stack's outputs; secret ones revealed only when asked for. */
  outputs: Record<string, unknown>;
}

/**
 * `stack export` for the ids and the resource count (secrets stay encrypted), and with `revealOutputs` the outputs
 * through `stack output --show-secrets`, which decrypts only them (the idle stack's R2 keys), not the whole state.
 */
export async function readStackState(cli: AsyncCli, stack: string, revealOutputs = false): Promise<StackState> {
  const [exported, revealed] = await Promise.all([
    cli(["stack", "export", "--stack", stack]),
    revealOutputs ? cli(["stack", "output", "--stack", stack, "--json", "--show-secrets"]) : undefined,
  ]);
  if (exported.status !== 0) throw failure(`scripts/pulumi stack export --stack ${stack} failed: ${lastLines(exported.stderr)}`, `run scripts/pulumi stack export --stack ${stack} and fix what it reports`);
  if (revealed && revealed.status !== 0) throw failure(`scripts/pulumi stack output --stack ${stack} failed: ${lastLines(revealed.stderr)}`, `run scripts/pulumi stack output --stack ${stack} and fix what it reports`);
  const parsed = JSON.parse(exported.stdout) as { deployment?: { resources?: Array<{ type?: string; outputs?: Record<string, unknown> }> } };
  const resources = parsed.deployment?.resources ?? [];
  const root = resources.find((x) => x.type === "pulumi:pulumi:Stack");
  const outputs = (revealed ? JSON.parse(revealed.stdout) : (root?.outputs ?? {})) as Record<string, unknown>;
  return { ids: idsInStackExport(parsed), resourceCount: resources.length, outputs };
}

export interface StackConfig {
  /** Non-secret values, full key -> parsed value. */
  values: Record<string, unknown>;
  /** Secret values (only when asked for), full key -> plaintext; memory only. */
  secrets: Record<string, string>;
}

export async function readStackConfig(cli: AsyncCli, stack: string, showSecrets = false): Promise<StackConfig> {
  const r = await cli(["config", "--stack", stack, "--json", ...(showSecrets ? ["--show-secrets"] : [])]);
  if (r.status !== 0) throw failure(`scripts/pulumi config --stack ${stack} failed: ${lastLines(r.stderr)}`, `run scripts/pulumi config --stack ${stack} and fix what it reports`);
  const raw = JSON.parse(r.stdout) as Record<string, { value?: string; secret?: boolean }>;
  const secrets: Record<string, string> = {};
  for (const [key, entry] of Object.entries(raw)) if (entry?.secret && typeof entry.value === "string") secrets[key] = entry.value;
  return { values: parseConfigJson(r.stdout), secrets };
}
