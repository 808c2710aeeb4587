// Per-process provider runtime: credentials and tuning from Pulumi config (via configure()) or the
// environment, plus optional hooks (metrics, exchange observer) installed by tests and the benchmark.
// Lives on globalThis so nothing is captured when Pulumi serializes the providers.
import type { TokenCache } from "../verda/auth";
import type { VerdaClientMetrics, VerdaExchange } from "../verda/client";

export interface VerdaRuntime {
  /** Values from Pulumi config (`verda:clientId`, `verda:clientSecret`, `verda:baseUrl`); win over env. */
  config: { clientId?: string; clientSecret?: string; baseUrl?: string };
  metrics?: VerdaClientMetrics;
  onExchange?: (exchange: VerdaExchange) => void;
  /** Access tokens per base URL and client ID, so each provider call does not log in again. */
  tokens?: Record<string, TokenCache>;
  /** Catalogue lists (instance types, locations) per base URL, for check(). */
  catalogue?: Record<string, { at: number; values: string[] }>;
}

export function verdaRuntime(): VerdaRuntime {
  const holder = globalThis as unknown as { __comfyumeVerdaRuntime?: VerdaRuntime };
  if (!holder.__comfyumeVerdaRuntime) holder.__comfyumeVerdaRuntime = { config: {} };
  return holder.__comfyumeVerdaRuntime;
}

/** Pulumi's configure(): reads stack config once per provider process (values arrive unwrapped). */
export async function configureFromPulumi(req: { config: { get(key: string): string | undefined } }): Promise<void> {
  const config = verdaRuntime().config;
  config.clientId = req.config.get("verda:clientId") ?? config.clientId;
  config.clientSecret = req.config.get("verda:clientSecret") ?? config.clientSecret;
  config.baseUrl = req.config.get("verda:baseUrl") ?? config.baseUrl;
}

export interface ProviderSettings {
  clientId: string;
  clientSecret: string;
  baseUrl: string | undefined;
  requestTimeoutMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
  retryMaxAttempts: number;
  /** Status polling: first interval, growing by half up to 4x. */
  pollIntervalMs: number;
  instanceTimeoutMs: number;
  volumeTimeoutMs: number;
}

function numberFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  const value = raw === undefined || raw === "" ? NaN : Number(raw);
  return Number.isFinite(value) && value >= 0 ? value : fallback;
}

export function providerSettings(): ProviderSettings {
  const config = verdaRuntime().config;
  return {
    clientId: config.clientId || process.env.VERDA_CLIENT_ID || "",
    clientSecret: config.clientSecret || process.env.VERDA_CLIENT_SECRET || "",
    baseUrl: config.baseUrl || process.env.VERDA_BASE_URL || undefined,
    requestTimeoutMs: numberFromEnv("VERDA_REQUEST_TIMEOUT_MS", 30_000),
    retryBaseMs: numberFromEnv("VERDA_RETRY_BASE_MS", 500),
    retryMaxMs: numberFromEnv("VERDA_RETRY_MAX_MS", 15_000),
    retryMaxAttempts: numberFromEnv("VERDA_RETRY_MAX_ATTEMPTS", 5),
    pollIntervalMs: numberFromEnv("VERDA_POLL_INTERVAL_MS", 5_000),
    instanceTimeoutMs: numberFromEnv("VERDA_INSTANCE_TIMEOUT_MS", 15 * 60_000),
    volumeTimeoutMs: numberFromEnv("VERDA_VOLUME_TIMEOUT_MS", 5 * 60_000),
  };
}
