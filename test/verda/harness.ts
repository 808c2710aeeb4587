// Starts the in-process Verda simulator and points the providers at it with fast polling and
// retries; records every client exchange so tests can validate it against the OpenAPI document.
import { startSimulator, type RunningSimulator, type SimulatorOptions } from "../../sim/simulator";
import { verdaRuntime } from "../../infra/providers/runtime";
import { newMetrics, VerdaClient, type VerdaClientMetrics, type VerdaExchange } from "../../infra/verda/client";
import { validateRequest, validateResponse } from "../support/openapi";

export interface Harness {
  sim: RunningSimulator;
  metrics: VerdaClientMetrics;
  exchanges: VerdaExchange[];
  /** A client of its own (not counted in `metrics`) for out-of-band changes and assertions. */
  direct: VerdaClient;
  /** Mutating calls (POST/PUT/DELETE except the token endpoint) the providers made so far. */
  mutatingCalls(): string[];
  /** OpenAPI violations of the requests the client sent (and of the answers it got), since the last call. */
  takeContractProblems(): { requests: string[]; responses: string[] };
  resetCounters(): void;
  close(): Promise<void>;
}

const ENV_KEYS = [
  "VERDA_BASE_URL", "VERDA_CLIENT_ID", "VERDA_CLIENT_SECRET", "VERDA_POLL_INTERVAL_MS", "VERDA_RETRY_BASE_MS",
  "VERDA_RETRY_MAX_MS", "VERDA_INSTANCE_TIMEOUT_MS", "VERDA_VOLUME_TIMEOUT_MS", "VERDA_REQUEST_TIMEOUT_MS",
];

export async function startHarness(options: SimulatorOptions = {}, env: Record<string, string> = {}): Promise<Harness> {
  const sim = await startSimulator({ timing: { orderedMs: 20, provisioningMs: 40, instanceDeleteMs: 20, volumeCreateMs: 20, volumeAttachMs: 20, instanceActionMs: 20 }, ...options });
  const saved = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));
  Object.assign(process.env, {
    VERDA_BASE_URL: sim.baseUrl,
    VERDA_CLIENT_ID: sim.clientId,
    VERDA_CLIENT_SECRET: sim.clientSecret,
    VERDA_POLL_INTERVAL_MS: "10",
    VERDA_RETRY_BASE_MS: "20",
    VERDA_RETRY_MAX_MS: "200",
    VERDA_INSTANCE_TIMEOUT_MS: "5000",
    VERDA_VOLUME_TIMEOUT_MS: "5000",
    VERDA_REQUEST_TIMEOUT_MS: "5000",
    ...env,
  });
  const runtime = verdaRuntime();
  const metrics = newMetrics();
  const exchanges: VerdaExchange[] = [];
  runtime.metrics = metrics;
  const requestProblems: string[] = [];
  const responseProblems: string[] = [];
  const record = (x: VerdaExchange) => {
    exchanges.push(x);
    const query = new URLSearchParams(x.query).toString();
    const path = query ? `${x.path}?${query}` : x.path;
    requestProblems.push(...validateRequest(x.method, path, x.requestBody));
    const responseBody = x.responseBody === undefined && x.responseText.trim() !== "" && x.responseText !== "[redacted]" ? x.responseText.trim() : x.responseBody;
    responseProblems.push(...validateResponse(x.method, path, x.status, responseBody));
  };
  runtime.onExchange = record;
  runtime.tokens = {};
  runtime.catalogue = {};
  const direct = new VerdaClient({ clientId: sim.clientId, clientSecret: sim.clientSecret, baseUrl: sim.baseUrl, onExchange: record });
  return {
    sim,
    metrics,
    exchanges,
    direct,
    takeContractProblems: () => ({ requests: requestProblems.splice(0), responses: responseProblems.splice(0) }),
    mutatingCalls: () =>
      Object.keys(metrics.calls).filter((k) => !k.startsWith("GET ") && k !== "POST /v1/oauth2/token"),
    resetCounters: () => {
      for (const key of Object.keys(metrics.calls)) delete metrics.calls[key];
      metrics.backoffMs = 0;
      metrics.retries = 0;
      metrics.reauthentications = 0;
    },
    close: async () => {
      runtime.metrics = undefined;
      runtime.onExchange = undefined;
      runtime.tokens = {};
  runtime.catalogue = {};
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      await sim.close();
    },
  };
}

export const PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG4rT3vTt99Ox5kndS4HmgTrKBT8SKzhK4rhGkEVGlCI workshop@comfyume";

/** Create results with the outputs the providers always return (the engine type leaves them optional). */
export function must<T>(result: { id: string; outs?: T }): { id: string; outs: T } {
  if (!result.outs) throw new Error("provider returned no outputs");
  return { id: result.id, outs: result.outs };
}
