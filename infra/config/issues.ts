// The config errors' building blocks: one issue per problem (key, what is wrong, the command that fixes it),
// and the helpers that turn a raw key or value into one.
import type { z } from "zod";
import type { SettingKey } from "./schema";
import { phaseOfStackName } from "./phase";
import { setCommand, removeCommand } from "./hints";

export const NAMESPACE = "comfyume";

export interface ConfigIssue {
  key: string;
  problem: string;
  fix: string;
}

export function describeIssue(key: SettingKey, issue: z.core.$ZodIssue, input: unknown, stack: string): ConfigIssue[] {
  const segments = issue.path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("");
  const path = `${key}${segments}`;
  const fullKey = `${NAMESPACE}:${path}`;
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((k) => ({
      key: `${fullKey}.${k}`,
      problem: "is not a known setting",
      fix: removeCommand(`${fullKey}.${k}`, stack),
    }));
  }
  if (issue.code === "invalid_union" && issue.path.length === 0) {
    return [{ key: `${fullKey}.mode`, problem: issue.message, fix: setCommand(`${key}.mode`, stack) }];
  }
  if (issue.code === "invalid_key") {
    const inner = issue.issues[0]?.message ?? issue.message;
    return [{ key: fullKey, problem: inner, fix: removeCommand(fullKey, stack) }];
  }
  const missing = issue.code === "invalid_type" && valueAt(input, issue.path) === undefined;
  if (issue.code === "invalid_type" && issue.expected === "array" && !missing) {
    // A list is set element by element; the wrong value must go first.
    return [{ key: fullKey, problem: issue.message, fix: `${removeCommand(fullKey, stack)} && ${setCommand(`${path}[0]`, stack)}` }];
  }
  const detail = /\(([^)]+)\)$/.exec(issue.message)?.[1];
  const problem = missing ? `is missing${detail ? ` (${detail})` : ""}` : issue.message;
  return [{ key: fullKey, problem, fix: setCommand(path, stack) }];
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = input;
  for (const p of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

export function splitKey(fullKey: string): [string, string | undefined] {
  const i = fullKey.indexOf(":");
  return i < 0 ? [fullKey, undefined] : [fullKey.slice(0, i), fullKey.slice(i + 1)];
}

export function tryJson(value: string): { ok: true; value: unknown } | { ok: false } {
  const t = value.trim();
  if (!t.startsWith("{") && !t.startsWith("[")) return { ok: false };
  try {
    return { ok: true, value: JSON.parse(t) };
  } catch {
    return { ok: false };
  }
}

export function plaintextFix(fullKey: string, stack: string): string {
  return `${removeCommand(fullKey, stack)} && scripts/pulumi config set --secret '${fullKey}' --stack ${stack} < value-file`;
}

export function guessPhase(stack: string): string {
  return phaseOfStackName(stack) ?? "workshop-day";
}
