// The one place that reads `comfyume:*` configuration. Every setting of every stack file is
// validated here before any resource is declared; all problems are collected and reported at once,
// each naming its key and the command that fixes it.
import * as pulumi from "@pulumi/pulumi";
import type { z } from "zod";
import { buildSchemas, type Settings, type SettingKey } from "./config/schema";
import { isPhase, layerOf, environmentOf, monthPhaseFor, stackMatchesPhase, PHASES, looksLikePhase, phaseOfStackName, ENVIRONMENT_NAME_RULE } from "./config/phase";
import { registryConflicts, type Environments } from "./config/environments";
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

export { SecretValue } from "./config/secrets";
export type { Phase, Layer, Environment } from "./config/phase";
export type { Settings, MelloSettings, BackupsSettings } from "./config/schema";

export const NAMESPACE = "comfyume";

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

export interface ConfigIssue {
  key: string;
  problem: string;
  fix: string;
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

interface CommonConfig {
  stack: string;
  phase: Phase;
  layer: Layer;
  environment?: Environment;
  /** Full StackReference names (`organization/comfyume/<stack>`) of the layers below. */
  stackRefs: { idle: string; month?: string };
  verda: Settings["verda"];
  ssh: Settings["ssh"];
  /** melloScriptsDir always set: the configured one or defaultMelloScriptsDir(stack). */
  paths: Settings["paths"] & { melloScriptsDir: string };
  timeouts: Settings["timeouts"];
  hostEnv: Settings["hostEnv"];
  melloHostEnv: Settings["melloHostEnv"];
  scratch: Settings["scratch"];
  backup: Settings["backup"];
  /** Where the day's GPU work runs: a Verda instance (default) or serverless container deployments. */
  inference: Inference;
  /** The serverless block, names resolved (used when inference = serverless; month and day layers). */
  serverless: ServerlessConfig;
  /** Serverless secrets (month layer, inference = serverless). */
  hfToken?: SecretValue;
  registryToken?: SecretValue;
  /** Cost guards; absent settings take their defaults (infra/money). */
  money: Partial<Pick<Settings, (typeof MONEY_KEYS)[number]>>;
}

export type { Inference } from "./config/serverless";

export type ServerlessConfig = Settings["serverless"] & { namePrefix: string };

export interface IdleConfig extends CommonConfig {
  layer: "idle";
  mello: Settings["mello"];
  backups: Settings["backups"];
  sshKeys: Settings["sshKeys"];
  /** Each environment's own login key and Tailscale identity (docs/configuration.md, Environments). */
  environments: Environments;
  /** Only for backups.mode = existing. */
  r2Credentials?: { accessKeyId: SecretValue; secretAccessKey: SecretValue };
  /** Only when watchdog.enabled: the idle stack installs the watchdog on mello over SSH. */
  sshPrivateKey?: SecretValue;
  redisPassword?: SecretValue;
}

/** Where the app runs (config `app`; docs/configuration.md, "Where the app runs"). */
export type AppConfig = { host: "mello" } | AppHostConfig;

/** The app on a Verda CPU instance the month stack owns: every default resolved. */
export type AppHostConfig = Omit<Settings["app"], "host" | "location" | "hostname" | "backupSetName" | "dataDir"> & {
  host: "verda";
  location: string;
  hostname: string;
  backupSetName: string;
  dataDir: string;
};

export interface MonthConfig extends CommonConfig {
  layer: "month";
  environment: Environment;
  app: AppConfig;
  /** Only for app.host = verda: the app host's restore and health check. */
  redisPassword?: SecretValue;
  tailscaleAuthKey?: SecretValue;
  /** `adopt`: an existing SFS taken as it is (docs/adopting.md). */
  sfs: { name: string; sizeGb: number; location: string; protect: boolean; adopt?: AdoptSettings };
  seed: Settings["seed"];
  /** Needed only while the seeding loader runs. */
  sshPrivateKey?: SecretValue;
}

/** `adopt: { id?, name? }` under a resource's config block (docs/adopting.md). */
export type AdoptSettings = { id?: string; name?: string };

export interface GpuConfig {
  instanceType: string;
  image: string;
  spot: boolean;
  hostname: string;
  description: string;
  osVolumeSizeGb: number;
  location: string;
  hostPublicKey?: string;
  /** An existing instance taken as the worker (docs/adopting.md). */
  adopt?: AdoptSettings;
}

export interface DayConfig extends CommonConfig {
  layer: "day";
  environment: Environment;
  stackRefs: { idle: string; month: string };
  gpu: GpuConfig;
  /** verda: the workers take Redis's address from the month's app host (output appRedisHost). */
  app: { host: "mello" | "verda" };
  restore: Settings["restore"] & { expectedTailscaleIp: string; redisHost: string };
  /** How the buckets the restore's R2 fallback reads are laid out (the day's own `seed.layout`, `seed.workerImageName`). */
  seed: Pick<Settings["seed"], "layout" | "workerImageName">;
  sshPrivateKey: SecretValue;
  redisPassword: SecretValue;
  tailscaleAuthKey: SecretValue;
}

export type ComfyumeConfig = IdleConfig | MonthConfig | DayConfig;

export type ValidationResult = { ok: true; config: ComfyumeConfig } | { ok: false; issues: ConfigIssue[] };

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

function crossChecks(
  phase: Phase,
  stack: string,
  raw: RawConfig,
  s: Partial<Settings>,
  add: (key: string, problem: string, fix: string) => void,
  inference: Inference = "instance",
): void {
  const layer = layerOf(phase);
  const env = raw.env ?? {};
  const has = (fullKey: string, envName: string) => raw.values[fullKey] !== undefined || !!env[envName];

  // Every layer declares Verda resources (idle: SSH keys); the providers read these settings.
  if (!has("verda:clientId", "VERDA_CLIENT_ID")) {
    add("verda:clientId", "is missing: the Verda API client id (console -> Keys -> API keys)", `scripts/pulumi config set verda:clientId <client-id> --stack ${stack}   (or export VERDA_CLIENT_ID)`);
  }
  if (!has("verda:clientSecret", "VERDA_CLIENT_SECRET")) {
    add("verda:clientSecret", "is missing: the Verda API client secret", `scripts/pulumi config set --secret verda:clientSecret --stack ${stack} < verda-client-secret.txt   (or export VERDA_CLIENT_SECRET)`);
  }
  if (layer === "idle" && s.mello?.mode === "hetzner" && !has("hcloud:token", "HCLOUD_TOKEN")) {
    add("hcloud:token", "is missing: mello.mode=hetzner manages the Hetzner server", `scripts/pulumi config set --secret hcloud:token --stack ${stack} < hcloud-token.txt   (or export HCLOUD_TOKEN)`);
  }
  const needsCloudflare = layer === "idle" && (s.backups?.mode === "managed" || (s.mello?.mode === "hetzner" && s.mello.dns !== undefined));
  if (needsCloudflare && !has("cloudflare:apiToken", "CLOUDFLARE_API_TOKEN")) {
    add("cloudflare:apiToken", "is missing: managed R2 buckets and the DNS record need a Cloudflare API token", `scripts/pulumi config set --secret cloudflare:apiToken --stack ${stack} < cloudflare-token.txt   (or export CLOUDFLARE_API_TOKEN)`);
  }
  if (layer === "idle" && s.backups?.mode === "existing" && !s.backups.accountId && !s.backups.endpoint) {
    add(`${NAMESPACE}:backups.endpoint`, "is missing: existing buckets need the R2 endpoint or the account id", setCommand("backups.endpoint", stack));
  }
  if (s.scratch?.adopt && s.scratch.lifetime !== "month") {
    add(
      `${NAMESPACE}:scratch.adopt`,
      "adopts an existing scratch, but scratch.lifetime is 'day' (a fresh scratch each day, deleted at night)",
      `scripts/pulumi config set --path '${NAMESPACE}:scratch.lifetime' month --stack ${stack}   (in the month and the day stack; the month stack adopts it)`,
    );
  }
  if (inference === "serverless") return; // no instance: the gpu/restore rules below do not apply
  if (layer === "day" && s.gpu?.adopt && s.scratch?.lifetime !== "month") {
    add(
      `${NAMESPACE}:gpu.adopt`,
      "adopts an existing instance, which cannot get a fresh day scratch: Verda attaches block volumes only at creation or to a shut-down instance",
      `scripts/pulumi config set --path '${NAMESPACE}:scratch.lifetime' month --stack ${stack}   (and in the month stack, which owns or adopts the scratch attached to that instance: scratch.adopt)`,
    );
  }
  environmentChecks(layer, stack, raw, s, add);
  appChecks(layer, stack, raw, s, add);
  if (layer === "day" && s.gpu) {
    // Only testing rehearses on the CPU defaults; every other environment names its instance and image.
    const environment = environmentOf(phase);
    const whose = environment === "workshop" ? "the workshop day's" : `the ${environment} day's`;
    if (environment !== "testing" && !s.gpu.instanceType) {
      add(`${NAMESPACE}:gpu.instanceType`, `is missing: ${whose} Verda instance type`, setCommand("gpu.instanceType", stack));
    }
    if (environment !== "testing" && !s.gpu.image) {
      add(`${NAMESPACE}:gpu.image`, `is missing: the ${environment} worker's OS image (with CUDA and Docker)`, setCommand("gpu.image", stack));
    }
    if (s.restore && !s.restore.expectedTailscaleIp) {
      add(`${NAMESPACE}:restore.expectedTailscaleIp`, "is missing: the Tailscale address the worker must come back with", setCommand("restore.expectedTailscaleIp", stack));
    }
    if (s.restore && !s.restore.redisHost && s.app?.host !== "verda") {
      add(`${NAMESPACE}:restore.redisHost`, "is missing: mello's Tailscale address, where the worker reaches Redis", setCommand("restore.redisHost", stack));
    }
    if (s.restore?.redisHost && s.app?.host === "verda") {
      add(
        `${NAMESPACE}:restore.redisHost`,
        "is set, but app.host is 'verda': the workers take Redis's address from the month's app host (its output appRedisHost)",
        `${removeCommand(`${NAMESPACE}:restore.redisHost`, stack)}   (the address comes from app.redisReach / app.redisHost in the month stack)`,
      );
    }
    const type = s.gpu.instanceType;
    if (environment === "testing" && type && !type.startsWith("CPU.") && !s.gpu.allowGpuForTesting) {
      add(
        `${NAMESPACE}:gpu.instanceType`,
        `is the GPU type '${type}' on ${phase}, which rehearses on a cheap CPU instance`,
        `${setCommand("gpu.instanceType", stack)}   (or set gpu.allowGpuForTesting true)`,
      );
    }
  }
}

/** The environment registry lives in the idle stack only, and never shares an identity between environments. */
function environmentChecks(layer: Layer, stack: string, raw: RawConfig, s: Partial<Settings>, add: (key: string, problem: string, fix: string) => void): void {
  const key = `${NAMESPACE}:environments`;
  if (layer !== "idle" && raw.values[key] !== undefined) {
    const moveTo = "scripts/pulumi config set --path 'comfyume:environments.<env>.<field>' <value> --stack idle";
    add(key, "is the idle stack's setting (the registry of every environment)", `${removeCommand(key, stack)} && ${moveTo}`);
  }
  if (layer === "idle" && s.environments) for (const i of registryConflicts(s.environments, stack)) add(i.key, i.problem, i.fix);
}

/** `comfyume:app`: the app host's settings belong to the month stack, and only with app.host = verda. */
function appChecks(layer: Layer, stack: string, raw: RawConfig, s: Partial<Settings>, add: (key: string, problem: string, fix: string) => void): void {
  const parsed = tryJson(raw.values[`${NAMESPACE}:app`] ?? "");
  const given = parsed.ok && parsed.value && typeof parsed.value === "object" ? Object.keys(parsed.value).filter((k) => k !== "host") : [];
  const app = s.app;
  if (!app) return;
  for (const k of given) {
    const key = `${NAMESPACE}:app.${k}`;
    if (layer === "day") add(key, "is a month stack setting (the month owns the app host); a day stack reads only app.host", removeCommand(key, stack));
    else if (app.host === "mello") add(key, "configures the app host, but app.host is 'mello' (the app runs on mello)", `scripts/pulumi config set --path '${NAMESPACE}:app.host' verda --stack ${stack}   (or ${removeCommand(key, stack)})`);
  }
  if (layer !== "month" || app.host !== "verda") return;
  if (!app.instanceType.startsWith("CPU.")) {
    add(`${NAMESPACE}:app.instanceType`, `is the GPU type '${app.instanceType}': the app host is a CPU instance kept for the month`, `scripts/pulumi config set --path '${NAMESPACE}:app.instanceType' CPU.8V.32G --stack ${stack}`);
  }
  // An adopted host keeps its own identity (nothing is restored over it): the address is then only Redis's, below.
  if (!app.adopt && !app.restoreSkip.includes("tailscale") && !app.expectedTailscaleIp) {
    add(`${NAMESPACE}:app.expectedTailscaleIp`, "is missing: the tailnet address the app host must come back with (its restored Tailscale identity)", setCommand("app.expectedTailscaleIp", stack));
  } else if (app.redisReach === "tailnet" && !app.redisHost && !app.expectedTailscaleIp) {
    add(`${NAMESPACE}:app.redisHost`, "is missing: the workers reach Redis over the tailnet, but no app.expectedTailscaleIp is set", `${setCommand("app.redisHost", stack)}   (or set app.redisReach instance-ip)`);
  }
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

function describeIssue(key: SettingKey, issue: z.core.$ZodIssue, input: unknown, stack: string): ConfigIssue[] {
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

function splitKey(fullKey: string): [string, string | undefined] {
  const i = fullKey.indexOf(":");
  return i < 0 ? [fullKey, undefined] : [fullKey.slice(0, i), fullKey.slice(i + 1)];
}

function tryJson(value: string): { ok: true; value: unknown } | { ok: false } {
  const t = value.trim();
  if (!t.startsWith("{") && !t.startsWith("[")) return { ok: false };
  try {
    return { ok: true, value: JSON.parse(t) };
  } catch {
    return { ok: false };
  }
}

function plaintextFix(fullKey: string, stack: string): string {
  return `${removeCommand(fullKey, stack)} && scripts/pulumi config set --secret '${fullKey}' --stack ${stack} < value-file`;
}

function guessPhase(stack: string): string {
  return phaseOfStackName(stack) ?? "workshop-day";
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
