// The deployment phases. Each phase is one Pulumi stack; the layers build on each other:
// idle (always up) -> <env>-month (the SFS) -> <env>-day (the worker instance).
// Environments are the operator's: `testing`, `workshop`, `prod`, `staging`, ... (docs/configuration.md).

/** The phases of the two environments the project started with; any `<env>-month`/`<env>-day` is a phase too. */
export const PHASES = ["idle", "testing-month", "workshop-month", "testing-day", "workshop-day"] as const;
export type Layer = "idle" | "month" | "day";
/** An environment name (ENVIRONMENT_NAME_RULE): `testing`, `workshop`, `prod`, `staging-eu`, ... */
export type Environment = string;
export type Phase = "idle" | `${string}-month` | `${string}-day`;

/** The environments whose stacks are recognised behind a prefix (`rehearsal-workshop-day`) without being named. */
export const BUILT_IN_ENVIRONMENTS: readonly Environment[] = ["testing", "workshop"];

const RESERVED_PARTS = ["idle", "month", "day"];
export const ENVIRONMENT_NAME_RULE =
  "an environment name is 1-32 lowercase letters, digits and '-', starts with a letter, ends with a letter or digit, " +
  "and has no '-'-separated part 'idle', 'month' or 'day' (e.g. prod, staging, testing-eu)";

/** Why `name` is not a valid environment name, or undefined when it is. */
export function environmentNameProblem(name: string): string | undefined {
  if (!/^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$/.test(name) || name.includes("--")) return `'${name}' breaks the rule: ${ENVIRONMENT_NAME_RULE}`;
  const reserved = name.split("-").find((part) => RESERVED_PARTS.includes(part));
  if (reserved) return `'${name}' has the part '${reserved}', which would make stack names ambiguous: ${ENVIRONMENT_NAME_RULE}`;
  return undefined;
}

/** idle, or `<env>-month` / `<env>-day` with a valid environment name. */
export function parsePhase(value: unknown): { layer: Layer; environment?: Environment } | undefined {
  if (value === "idle") return { layer: "idle" };
  if (typeof value !== "string") return undefined;
  const m = /^(.+)-(month|day)$/.exec(value);
  if (!m || environmentNameProblem(m[1])) return undefined;
  return { layer: m[2] as Layer, environment: m[1] };
}

/** Shaped like a phase (`idle`, `<something>-month`, `<something>-day`), whether or not the name is valid. */
export function looksLikePhase(value: string): boolean {
  return value === "idle" || /^.+-(month|day)$/.test(value);
}

export function isPhase(value: unknown): value is Phase {
  return parsePhase(value) !== undefined;
}

export function layerOf(phase: Phase): Layer {
  if (phase === "idle") return "idle";
  return phase.endsWith("-month") ? "month" : "day";
}

/** The environment of a month/day phase (`prod-day` -> `prod`); undefined for idle. */
export function environmentOf(phase: Phase): Environment | undefined {
  if (phase === "idle") return undefined;
  return phase.replace(/-(month|day)$/, "");
}

/** The month phase a day phase layers on. */
export function monthPhaseFor(phase: Phase): Phase | undefined {
  const env = environmentOf(phase);
  return env && layerOf(phase) === "day" ? `${env}-month` : undefined;
}

/**
 * A stack runs the phase of its name: `workshop-day`, or a prefixed/suffixed variant such as
 * `rehearsal-workshop-day` or `workshop-day-2`. Guards against `up` of the wrong layer.
 */
export function stackMatchesPhase(stack: string, phase: Phase): boolean {
  return stack === phase || stack.endsWith(`-${phase}`) || stack.startsWith(`${phase}-`);
}

/**
 * The phase a stack name names, for tools that see only the name (policy pack, cost, sweep, status).
 * The layer is the last `-month`/`-day` part (an environment name never has one). The environment is
 * everything before it, except that a prefix (`rehearsal-`) is dropped when the rest ends with a
 * known environment (BUILT_IN_ENVIRONMENTS plus `known`; the longest wins): `rehearsal-testing-month`
 * -> `testing-month`, `workshop-day-2` -> `workshop-day`, `prod-day` -> `prod-day`.
 */
export function phaseOfStackName(stack: string, known: readonly Environment[] = []): Phase | undefined {
  if (stack === "idle" || stack.endsWith("-idle") || stack.startsWith("idle-")) return "idle";
  const parts = stack.split("-");
  let at = -1;
  for (let i = parts.length - 1; i > 0; i--) {
    if (parts[i] === "month" || parts[i] === "day") {
      at = i;
      break;
    }
  }
  if (at < 0) return undefined;
  const layer = parts[at] as "month" | "day";
  const envPart = parts.slice(0, at).join("-");
  const candidates = [...BUILT_IN_ENVIRONMENTS, ...known].filter((e) => envPart === e || envPart.endsWith(`-${e}`));
  const environment = candidates.sort((a, b) => b.length - a.length)[0] ?? envPart;
  return environmentNameProblem(environment) ? undefined : `${environment}-${layer}`;
}
