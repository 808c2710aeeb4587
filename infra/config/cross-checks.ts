// The rules that span settings (credentials a layer needs, settings that belong to another stack, what one
// setting requires of another), run after each setting passed its own schema.
import type { RawConfig } from "../config";
import type { Settings } from "./schema";
import { layerOf, environmentOf, type Phase, type Layer } from "./phase";
import { registryConflicts } from "./environments";
import { setCommand, removeCommand } from "./hints";
import { NAMESPACE, tryJson } from "./issues";
import type { Inference } from "./serverless";

export function crossChecks(
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
