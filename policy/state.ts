// Reads a stack's last state with the Pulumi CLI the policy pack runs under (same backend and
// passphrase through the inherited environment). Policies are not given the old state by the engine.
import { spawnSync } from "node:child_process";
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

/**
 * The stack's state; `exists: false` for a stack that was never created. Throws with the CLI's message
 * when the state cannot be read, so the calling policy fails closed. Runs in the program's directory:
 * a bare stack name is resolved within the project found there.
 */
export function readStackState(stack: string, cwd: string): StackState {
  const cached = cache.get(stack);
  if (cached) return cached;
  const cli = process.env.COMFYUME_POLICY_PULUMI || "pulumi";
  const result = spawnSync(cli, ["stack", "export", "--stack", stack, "--non-interactive"], {
    cwd,
    encoding: "utf8",
    timeout: 60_000,
    maxBuffer: 256 * 1024 * 1024,
    env: { ...process.env, PULUMI_SKIP_UPDATE_CHECK: "true" },
  });
  let state: StackState;
  if (result.status === 0) {
    state = parseStackExport(result.stdout);
  } else if (/no stack named|stack .* not found|does not exist/i.test(result.stderr ?? "")) {
    state = { exists: false, resources: [] };
  } else {
    const why = result.error ? result.error.message : (result.stderr || "").trim().split("\n").slice(-2).join(" ");
    throw new Error(`cannot read the state of stack ${stack} with \`${cli} stack export\`: ${why}`);
  }
  cache.set(stack, state);
  return state;
}
