// The validated configuration of each layer, as the program reads it (infra/config.ts builds it).
import type { Settings } from "./schema";
import type { Phase, Layer, Environment } from "./phase";
import type { Environments } from "./environments";
import type { SecretValue } from "./secrets";
import type { Inference } from "./serverless";
import type { MONEY_KEYS } from "../money/settings";
import type { ConfigIssue } from "./issues";

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
