// The one place that reads `comfyume:*` configuration. Every setting of every stack file is
// validated here before any resource is declared; all problems are collected and reported at once,
// each naming its key and the command that fixes it.
import * as pulumi from "@pulumi/pulumi";
import type { z } from "zod";
import { buildSchemas, type Settings, type SettingKey } from "./config/schema";
import { isPhase, layerOf, environmentOf, monthPhaseFor, stackMatchesPhase, PHASES, looksLikePhase, ENVIRONMENT_NAME_RULE } from "./config/phase";
import type { Phase, Layer, Environment } from "./config/phase";
import {
  secretSpecs,
  looksLikeSecretName,
  looksLikeSecretValue,
  secretLookingPaths,
  SecretValue,
  type SecretKey,
} from "./config/secrets";
import { setCommand, secretSetCommand, removeCommand } from "./config/hints";
import { MONEY_KEYS } from "./money/settings";
import { parseInference, serverlessChecks, type Inference } from "./config/serverless";
import { NAMESPACE, describeIssue, splitKey, tryJson, plaintextFix, guessPhase, type ConfigIssue } from "./config/issues";
import { crossChecks } from "./config/cross-checks";
import type { AppConfig, DayConfig, ComfyumeConfig, ValidationResult } from "./config/types";

export { SecretValue } from "./config/secrets";
export type { Phase, Layer, Environment } from "./config/phase";
export type { Settings, MelloSettings, BackupsSettings } from "./config/schema";
export { NAMESPACE } from "./config/issues";
export type { Inference } from "./config/serverless";
export type { IdleConfig, AppConfig, AppHostConfig, MonthConfig, AdoptSettings, GpuConfig, DayConfig, ComfyumeConfig, ValidationResult, ServerlessConfig } from "./config/types";
export type { ConfigIssue } from "./config/issues";

/** Raw configuration as the engine hands it to the program. */
export interface RawConfig {
  stack: string;
  /** Full keys (`comfyume:gpu`, `hcloud:token`) to raw strings (objects as JSON). */
  values: Record<string, string>;
  /** Full keys that were set with `--secret`. */
  secretKeys: ReadonlySet<string>;
  /** Environment variables that can stand in for provider credentials. */
  env?: Record<string, string | undefined>;
}

export class ConfigError extends Error {
  constructor(
    readonly stack: string,
    readonly issues: ConfigIssue[],
  ) {
    super(formatIssues(stack, issues));
    this.name = "ConfigError";
  }
}

export function formatIssues(stack: string, issues: ConfigIssue[]): string {
  const head = `Configuration of stack '${stack}' has ${issues.length} problem${issues.length === 1 ? "" : "s"}; nothing was created:`;
  const lines = issues.map((i) => `  - ${i.key}: ${i.problem}\n      fix: ${i.fix}`);
  return [head, ...lines].join("\n");
}

const OBJECT_KEYS: readonly SettingKey[] = [
  "stackRefs",
  "verda",
  "ssh",
  "paths",
  "timeouts",
  "hostEnv",
  "melloHostEnv",
  "restore",
  "mello",
  "backups",
  "sshKeys",
  "sfs",
  "seed",
  "scratch",
  "gpu",
  "backup",
  "serverless",
  "environments",
  "app",
  ...MONEY_KEYS,
];

/** Settings each layer cannot do without (the rest have defaults). */
const REQUIRED_BY_LAYER: Record<Layer, readonly SettingKey[]> = {
  idle: ["mello", "backups", "sshKeys"],
  month: [],
  day: [],
};

const SECRETS_BY_LAYER: Record<Layer, readonly SecretKey[]> = {
  idle: [],
  month: [],
  day: ["sshPrivateKey", "redisPassword", "tailscaleAuthKey"],
};

/** Pure validation: no Pulumi runtime needed, so every message is unit-testable. */
export function validateConfig(raw: RawConfig): ValidationResult {
  const { stack } = raw;
  const issues: ConfigIssue[] = [];
  const add = (key: string, problem: string, fix: string) => issues.push({ key, problem, fix });
  const specs = secretSpecs();
  const secretNames = Object.keys(specs) as SecretKey[];
  const known = new Set<string>(["phase", "inference", ...OBJECT_KEYS, ...secretNames]);

  // 1. Secrets in plaintext, in any namespace, at any depth.
  for (const [fullKey, value] of Object.entries(raw.values)) {
    if (raw.secretKeys.has(fullKey)) continue;
    const [ns, key = ""] = splitKey(fullKey);
    const isOurSecret = ns === NAMESPACE && (secretNames as string[]).includes(key);
    if (isOurSecret || looksLikeSecretName(key) || looksLikeSecretValue(value)) {
      add(fullKey, "is a secret but is set in plaintext", plaintextFix(fullKey, stack));
      continue;
    }
    const parsed = tryJson(value);
    if (parsed.ok && parsed.value !== null && typeof parsed.value === "object") {
      for (const path of secretLookingPaths(parsed.value)) {
        add(`${fullKey}.${path}`, "looks like a secret inside a plaintext setting", `${removeCommand(`${fullKey}.${path}`, stack)}; secrets go in their own --secret keys`);
      }
    }
  }

  // 2. Unknown settings (typos) in our namespace.
  for (const fullKey of Object.keys(raw.values)) {
    const [ns, key = ""] = splitKey(fullKey);
    if (ns === NAMESPACE && !known.has(key)) {
      add(fullKey, `is not a known setting (known: ${[...known].sort().join(", ")})`, removeCommand(fullKey, stack));
    }
  }

  // 3. The phase, and that it belongs to this stack.
  const phaseRaw = raw.values[`${NAMESPACE}:phase`];
  if (phaseRaw === undefined) {
    add(`${NAMESPACE}:phase`, "is missing", setCommand("phase", stack).replace("workshop-day", guessPhase(stack)));
    return { ok: false, issues };
  }
  if (!isPhase(phaseRaw)) {
    // Shaped like a phase (`Prod-day`): the environment name breaks the rule; otherwise not a phase at all.
    const rule = `a phase is idle, <env>-month or <env>-day, and ${ENVIRONMENT_NAME_RULE}`;
    const fix = setCommand("phase", stack).replace("workshop-day", guessPhase(stack));
    if (looksLikePhase(phaseRaw)) add(`${NAMESPACE}:phase`, `'${phaseRaw}' of stack '${stack}' is not a phase: ${rule}`, `${fix}   (and name the stack after it)`);
    else add(`${NAMESPACE}:phase`, `'${phaseRaw}' is not a phase; use one of ${PHASES.join(", ")}`, `${fix}   (${rule})`);
    return { ok: false, issues };
  }
  const phase = phaseRaw;
  if (!stackMatchesPhase(stack, phase)) {
    add(
      `${NAMESPACE}:phase`,
      `is '${phase}' but the stack is '${stack}': a stack runs the phase in its name`,
      `select the right stack (--stack ${phase}) or fix stacks/Pulumi.${stack}.yaml`,
    );
  }
  const layer = layerOf(phase);
  const environment = environmentOf(phase);

  // 4. Every non-secret setting against its schema (absent settings take their defaults).
  const schemas = buildSchemas();
  const settings: Partial<Settings> = {};
  for (const key of OBJECT_KEYS) {
    const fullKey = `${NAMESPACE}:${key}`;
    const rawValue = raw.values[fullKey];
    if (rawValue === undefined && REQUIRED_BY_LAYER[layer].includes(key)) {
      add(fullKey, `is missing (the ${phase} stack needs it)`, `${setCommand(`${key}.<field>`, stack)} for each field; see stacks/Pulumi.${stack}.yaml`);
      continue;
    }
    let input: unknown = {};
    if (rawValue !== undefined) {
      const parsed = tryJson(rawValue);
      if (!parsed.ok || parsed.value === null || typeof parsed.value !== "object" || Array.isArray(parsed.value)) {
        add(fullKey, "must be an object; set its fields one by one", setCommand(`${key}.<field>`, stack));
        continue;
      }
      input = parsed.value;
    }
    const schema = schemas[key] as z.ZodType;
    const result = schema.safeParse(input);
    if (result.success) {
      (settings as Record<string, unknown>)[key] = result.data;
    } else if (rawValue === undefined) {
      // Absent and without complete defaults: a setting of another layer (e.g. mello on a day stack).
      continue;
    } else {
      for (const issue of result.error.issues) issues.push(...describeIssue(key, issue, input, stack));
    }
  }

  // 4b. Where the GPU work runs (a plain string, not an object).
  const inference = parseInference(raw.values[`${NAMESPACE}:inference`], stack, add);
  const serverless = inference === "serverless" && layer !== "idle";

  // 5. Secrets this layer needs, and their shape.
  const secrets: Partial<Record<SecretKey, SecretValue>> = {};
  // A serverless day stack has no instance to reach: no SSH key, Redis password or Tailscale key.
  const requiredSecrets = new Set<SecretKey>(serverless && layer === "day" ? [] : SECRETS_BY_LAYER[layer]);
  if (serverless && layer === "month" && settings.serverless?.registry) requiredSecrets.add("registryToken");
  if (layer === "month" && settings.seed?.loader) requiredSecrets.add("sshPrivateKey");
  if (layer === "month" && settings.app?.host === "verda") {
    for (const k of ["sshPrivateKey", "redisPassword", "tailscaleAuthKey"] as const) requiredSecrets.add(k);
  }
  // A serverless day backs up <sfs>/outputs (and the app's files) on the month's app host over SSH.
  if (serverless && layer === "day" && settings.app?.host === "verda" && settings.serverless?.outputsBackup === "app-host") requiredSecrets.add("sshPrivateKey");
  if (layer === "idle" && settings.watchdog?.enabled === true) requiredSecrets.add("sshPrivateKey");
  if (layer === "idle" && settings.backups?.mode === "existing") {
    requiredSecrets.add("r2AccessKeyId");
    requiredSecrets.add("r2SecretAccessKey");
  }
  for (const key of secretNames) {
    const fullKey = `${NAMESPACE}:${key}`;
    const value = raw.values[fullKey];
    if (value === undefined || !raw.secretKeys.has(fullKey)) {
      if (value === undefined && requiredSecrets.has(key)) {
        add(fullKey, `is missing: ${specs[key].what}`, secretSetCommand(key, stack, specs[key].source));
      }
      continue;
    }
    const problem = specs[key].check?.(value);
    if (problem) add(fullKey, problem, secretSetCommand(key, stack, specs[key].source));
    else secrets[key] = new SecretValue(value);
  }

  // 6. Rules across settings.
  crossChecks(phase, stack, raw, settings, add, inference);
  if (serverless) serverlessChecks(layer, stack, settings, add);

  if (issues.length > 0) return { ok: false, issues };
  return { ok: true, config: assemble(stack, phase, layer, environment, settings as Settings, secrets, inference) };
}

/**
 * Each stack's scripts on mello live in their own directory: the idle stack's watchdog and every day stack
 * used to share /opt/comfyume/lib, so the last `up` decided which library the nightly backup ran with.
 */
export function defaultMelloScriptsDir(stack: string): string {
  return `/opt/comfyume/stacks/${stack.replace(/[^A-Za-z0-9._-]/g, "_")}`;
}

function assemble(
  stack: string,
  phase: Phase,
  layer: Layer,
  environment: Environment | undefined,
  s: Settings,
  secrets: Partial<Record<SecretKey, SecretValue>>,
  inference: Inference = "instance",
): ComfyumeConfig {
  const org = s.stackRefs.organization;
  const ref = (name: string) => `${org}/${NAMESPACE}/${name}`;
  const common = {
    stack,
    phase,
    environment,
    stackRefs: { idle: ref(s.stackRefs.idle ?? "idle"), month: ref(s.stackRefs.month ?? monthPhaseFor(phase) ?? "") },
    verda: s.verda,
    ssh: s.ssh,
    paths: { ...s.paths, melloScriptsDir: s.paths.melloScriptsDir ?? defaultMelloScriptsDir(stack) },
    timeouts: s.timeouts,
    hostEnv: s.hostEnv,
    melloHostEnv: s.melloHostEnv,
    scratch: s.scratch,
    backup: s.backup,
    inference,
    serverless: { ...s.serverless, namePrefix: s.serverless.namePrefix ?? `comfyume-${environment ?? "idle"}-worker` },
    hfToken: secrets.hfToken,
    registryToken: secrets.registryToken,
    money: Object.fromEntries(MONEY_KEYS.filter((k) => s[k] !== undefined).map((k) => [k, s[k]])),
  };
  if (layer === "idle") {
    const r2 =
      secrets.r2AccessKeyId && secrets.r2SecretAccessKey
        ? { accessKeyId: secrets.r2AccessKeyId, secretAccessKey: secrets.r2SecretAccessKey }
        : undefined;
    return { ...common, layer, stackRefs: { idle: common.stackRefs.idle }, mello: s.mello, backups: s.backups, sshKeys: s.sshKeys, environments: s.environments, r2Credentials: r2, sshPrivateKey: secrets.sshPrivateKey, redisPassword: secrets.redisPassword };
  }
  const env = environment as Environment;
  if (layer === "month") {
    return {
      ...common,
      layer,
      environment: env,
      stackRefs: { idle: common.stackRefs.idle },
      sfs: {
        name: s.sfs.name ?? `comfyume-${env}-sfs`,
        sizeGb: s.sfs.sizeGb,
        location: s.sfs.location ?? s.verda.location,
        protect: s.sfs.protect,
        adopt: s.sfs.adopt,
      },
      seed: s.seed,
      app: resolveApp(s, env),
      sshPrivateKey: secrets.sshPrivateKey,
      redisPassword: secrets.redisPassword,
      tailscaleAuthKey: secrets.tailscaleAuthKey,
    };
  }
  const g = s.gpu;
  return {
    ...common,
    layer,
    environment: env,
    gpu: {
      instanceType: g.instanceType ?? "CPU.4V.16G",
      image: g.image ?? "ubuntu-24.04",
      spot: g.spot,
      hostname: g.hostname ?? `comfyume-${phase}`,
      description: g.description ?? `comfyume ${phase} worker`,
      osVolumeSizeGb: g.osVolumeSizeGb,
      location: g.location ?? s.verda.location,
      hostPublicKey: g.hostPublicKey,
      adopt: g.adopt,
    },
    restore: s.restore as DayConfig["restore"],
    seed: { layout: s.seed.layout, workerImageName: s.seed.workerImageName },
    app: { host: s.app.host },
    sshPrivateKey: secrets.sshPrivateKey as SecretValue,
    redisPassword: secrets.redisPassword as SecretValue,
    tailscaleAuthKey: secrets.tailscaleAuthKey as SecretValue,
  };
}

function resolveApp(s: Settings, env: Environment): AppConfig {
  const a = s.app;
  if (a.host === "mello") return { host: "mello" };
  const hostname = a.hostname ?? `comfyume-${env}-app`;
  return {
    ...a,
    host: "verda",
    location: a.location ?? s.verda.location,
    hostname,
    backupSetName: a.backupSetName ?? hostname,
    dataDir: a.dataDir ?? `${a.projectDir}/data`,
  };
}

/** Reads the engine's configuration: values plus which keys were set with --secret. */
export function readRawConfig(): RawConfig {
  const values = pulumi.runtime.allConfig();
  return { stack: pulumi.getStack(), values, secretKeys: new Set(Object.keys(values).filter(isSecretKey)), env: process.env };
}

function isSecretKey(fullKey: string): boolean {
  // `isConfigSecret` is internal to the SDK; it reads PULUMI_CONFIG_SECRET_KEYS, set by the language host.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const runtimeConfig = require("@pulumi/pulumi/runtime/config") as { isConfigSecret?: (k: string) => boolean };
  if (typeof runtimeConfig.isConfigSecret === "function") return runtimeConfig.isConfigSecret(fullKey);
  const listed = JSON.parse(process.env.PULUMI_CONFIG_SECRET_KEYS ?? "[]") as string[];
  return listed.includes(fullKey);
}

/** Validates the whole configuration or throws one error listing every problem. */
export function loadConfig(raw: RawConfig = readRawConfig()): ComfyumeConfig {
  const result = validateConfig(raw);
  if (!result.ok) throw new ConfigError(raw.stack, result.issues);
  return result.config;
}

/** A config secret as a Pulumi secret Output: encrypted in state, masked in logs. */
export function secretOutput(value: SecretValue): pulumi.Output<string> {
  return pulumi.secret(value.reveal());
}
