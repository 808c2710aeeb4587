// Reads a stack's last state with the Pulumi CLI the policy pack runs under (same backend and
// passphrase through the inherited environment). Policies are not given the old state by the engine.
import { execFile, spawnSync } from "node:child_process";
import { isInstance } from "./resources";
import type { StateResource } from "./rules/scratch-replacement";

export interface StackState {
  exists: boolean;
  resources: StateResource[];
}

interface ExportedResource {
  urn: string;
  type: string;
  inputs?: Record<string, unknown>;
}

/** Parses `pulumi stack export` output. */
export function parseStackExport(json: string): StackState {
  const parsed = JSON.parse(json) as { deployment?: { resources?: ExportedResource[] } };
  const resources = (parsed.deployment?.resources ?? []).map((r) => ({ urn: r.urn, type: r.type, inputs: r.inputs ?? {} }));
  return { exists: true, resources };
}

export const hasInstance = (state: StackState): boolean => state.resources.some((r) => isInstance(r.type));

const cache = new Map<string, StackState>();
const NOT_FOUND = /no stack named|stack .* not found|does not exist/i;
const cliOf = () => process.env.COMFYUME_POLICY_PULUMI || "pulumi";
const exportArgs = (stack: string) => ["stack", "export", "--stack", stack, "--non-interactive"];
const cliEnv = () => ({ ...process.env, PULUMI_SKIP_UPDATE_CHECK: "true" });

/** The state a finished `stack export` gave, or undefined when it failed for another reason than "no such stack". */
function stateFrom(status: number | null, stdout: string, stderr: string): StackState | undefined {
  if (status === 0) return parseStackExport(stdout);
  if (NOT_FOUND.test(stderr)) return { exists: false, resources: [] };
  return undefined;
}

/**
 * The stack's state; `exists: false` for a stack that was never created. Throws with the CLI's message
 * when the state cannot be read, so the calling policy fails closed. Runs in the program's directory:
 * a bare stack name is resolved within the project found there.
 */
export function readStackState(stack: string, cwd: string): StackState {
  const cached = cache.get(stack);
  if (cached) return cached;
  const result = spawnSync(cliOf(), exportArgs(stack), { cwd, encoding: "utf8", timeout: 60_000, maxBuffer: 256 * 1024 * 1024, env: cliEnv() });
  const state = result.error ? undefined : stateFrom(result.status, result.stdout, result.stderr ?? "");
  if (!state) {
    const why = result.error ? result.error.message : (result.stderr || "").trim().split("\n").slice(-2).join(" ");
    throw new Error(`cannot read the state of stack ${stack} with \`${cliOf()} stack export\`: ${why}`);
  }
  cache.set(stack, state);
  return state;
}

/**
 * Reads a stack's state in the background when the pack starts (scripts/pulumi names the stack in
 * COMFYUME_PULUMI_STACK): the state the run starts from, ready before any rule asks, so the stack rules at the
 * end of an update wait on no CLI (~0.5 s). A failure caches nothing: the rule's own read then fails closed.
 */
export function prefetchStackState(stack: string, cwd: string): Promise<void> {
  const name = stack.split("/").pop()!;
  return new Promise((resolve) => {
    execFile(cliOf(), exportArgs(name), { cwd, encoding: "utf8", timeout: 60_000, maxBuffer: 256 * 1024 * 1024, env: cliEnv() }, (error, stdout, stderr) => {
      const status = error ? (typeof error.code === "number" ? error.code : null) : 0;
      const state = status === null ? undefined : stateFrom(status, stdout, stderr);
      if (state && !cache.has(name)) cache.set(name, state);
      resolve();
    });
  });
}
