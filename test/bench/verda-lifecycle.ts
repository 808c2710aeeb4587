// Benchmark: API calls per provider lifecycle and time spent in backoff, against the in-process
// simulator, clean and with injected faults / tight rate limits. Run: npm run bench:verda
import { instanceProvider, sshKeyProvider, startupScriptProvider, volumeProvider, type InstanceInputs, type VolumeInputs } from "../../infra/providers";
import { verdaRuntime } from "../../infra/providers/runtime";
import { startSimulator, type FaultRule, type SimulatorOptions } from "../../sim/simulator";
import { newMetrics, type VerdaClientMetrics } from "../../infra/verda/client";

const PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG4rT3vTt99Ox5kndS4HmgTrKBT8SKzhK4rhGkEVGlCI bench@comfyume";
const TIMING = { orderedMs: 100, provisioningMs: 300, instanceDeleteMs: 100, volumeCreateMs: 50, volumeAttachMs: 50, instanceActionMs: 50 };
const POLL_MS = "100";

interface Lifecycle {
  name: string;
  /** Faults injected for the "faults" scenario: a 429 with Retry-After, two 500s and a 503. */
  faults: FaultRule[];
  run(): Promise<void>;
}

async function checked<I>(check: (olds: I, news: I) => Promise<{ inputs?: I; failures?: unknown[] }>, news: I): Promise<I> {
  const result = await check({} as I, news);
  if (result.failures?.length) throw new Error(`check failed: ${JSON.stringify(result.failures)}`);
  return result.inputs!;
}

const lifecycles: Lifecycle[] = [
  {
    name: "SshKey",
    faults: [
      { type: "http", method: "POST", path: "/v1/ssh-keys", status: 500, count: 2 },
      { type: "http", method: "GET", path: "/v1/ssh-keys/{id}", status: 429, retry_after: 1, count: 1 },
    ],
    async run() {
      const inputs = await checked(sshKeyProvider.check!, { name: "bench", publicKey: PUBLIC_KEY });
      const c = await sshKeyProvider.create(inputs);
      await sshKeyProvider.read!(c.id, c.outs!);
      await sshKeyProvider.delete!(c.id, c.outs!);
    },
  },
  {
    name: "StartupScript",
    faults: [
      { type: "http", method: "POST", path: "/v1/scripts", status: 500, count: 2 },
      { type: "http", method: "GET", path: "/v1/scripts/{id}", status: 429, retry_after: 1, count: 1 },
    ],
    async run() {
      const inputs = await checked(startupScriptProvider.check!, { name: "bench", script: "#!/bin/bash\ntrue\n" });
      const c = await startupScriptProvider.create(inputs);
      await startupScriptProvider.read!(c.id, c.outs!);
      await startupScriptProvider.delete!(c.id, c.outs!);
    },
  },
  {
    name: "Volume (block: create, grow, delete)",
    faults: [
      { type: "http", method: "POST", path: "/v1/volumes", status: 500, count: 2 },
      { type: "http", method: "GET", path: "/v1/volumes/{id}", status: 429, retry_after: 1, count: 1 },
      { type: "http", method: "PUT", path: "/v1/volumes", status: 503, count: 1 },
    ],
    async run() {
      const inputs = await checked<VolumeInputs>(volumeProvider.check!, { name: "bench-scratch", size: 50, locationCode: "FIN-01" });
      const c = await volumeProvider.create(inputs);
      await volumeProvider.read!(c.id, c.outs!);
      const u = await volumeProvider.update!(c.id, c.outs!, { ...inputs, size: 80 });
      await volumeProvider.delete!(c.id, { ...u.outs!, permanent: true });
    },
  },
  {
    name: "Instance (create, tag, delete)",
    faults: [
      { type: "http", method: "POST", path: "/v1/instances", status: 500, count: 2 },
      { type: "http", method: "GET", path: "/v1/instances/{id}", status: 429, retry_after: 1, count: 1 },
      { type: "http", method: "PUT", path: "/v1/instances", status: 503, count: 1 },
    ],
    async run() {
      const inputs = await checked<InstanceInputs>(instanceProvider.check!, {
        instanceType: "1H100.80S.22V", image: "ubuntu-24.04-cuda-12.8-open-docker", hostname: "bench-gpu", locationCode: "FIN-01",
        osVolume: { name: "bench-gpu-os", size: 60 },
      });
      const c = await instanceProvider.create(inputs);
      await instanceProvider.read!(c.id, c.outs!);
      const u = await instanceProvider.update!(c.id, c.outs!, { ...inputs, tags: { phase: "bench" } });
      await instanceProvider.delete!(c.id, u.outs!);
    },
  },
  {
    name: "Workshop (SFS + scratch + instance, attach, teardown)",
    faults: [
      { type: "http", method: "POST", path: "/v1/instances", status: 500, count: 2 },
      { type: "http", method: "GET", path: "/v1/volumes/{id}", status: 429, retry_after: 1, count: 1 },
      { type: "http", method: "PUT", path: "/v1/volumes", status: 503, count: 1 },
    ],
    async run() {
      const sfsIn = await checked<VolumeInputs>(volumeProvider.check!, { name: "bench-sfs", size: 100, type: "NVMe_Shared", locationCode: "FIN-01" });
      const sfs = await volumeProvider.create(sfsIn);
      const scratchIn = await checked<VolumeInputs>(volumeProvider.check!, { name: "bench-scratch", size: 200, locationCode: "FIN-01" });
      const scratch = await volumeProvider.create(scratchIn);
      const gpuIn = await checked<InstanceInputs>(instanceProvider.check!, {
        instanceType: "1H100.80S.22V", image: "ubuntu-24.04-cuda-12.8-open-docker", hostname: "bench-ws", locationCode: "FIN-01",
        osVolume: { name: "bench-ws-os", size: 60 }, existingVolumes: [scratch.id],
      });
      const gpu = await instanceProvider.create(gpuIn);
      const attached = await volumeProvider.update!(sfs.id, sfs.outs!, { ...sfsIn, instanceIds: [gpu.id] });
      await instanceProvider.delete!(gpu.id, gpu.outs!);
      await volumeProvider.delete!(sfs.id, { ...attached.outs!, permanent: true });
      await volumeProvider.delete!(scratch.id, { ...scratch.outs!, permanent: true });
    },
  },
];

interface Scenario {
  name: string;
  sim: SimulatorOptions;
  injectFaults: boolean;
}

const scenarios: Scenario[] = [
  { name: "clean", sim: {}, injectFaults: false },
  { name: "faults (429 Retry-After 1s, 500x2, 503)", sim: {}, injectFaults: true },
  { name: "rate limit 8 req / 2 s per endpoint", sim: { rateLimits: { endpointPerWindow: 8, projectPerWindow: 500, windowMs: 2_000, overrides: {} } }, injectFaults: false },
];

interface Row {
  scenario: string;
  lifecycle: string;
  apiCalls: number;
  tokenCalls: number;
  retries: number;
  backoffMs: number;
  wallMs: number;
  error?: string;
}

function apiCalls(m: VerdaClientMetrics): { api: number; token: number } {
  let api = 0;
  let token = 0;
  for (const [route, n] of Object.entries(m.calls)) {
    if (route === "POST /v1/oauth2/token") token += n;
    else api += n;
  }
  return { api, token };
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  let detail: Record<string, number> = {};
  for (const scenario of scenarios) {
    for (const lifecycle of lifecycles) {
      const sim = await startSimulator({ timing: TIMING, ...scenario.sim });
      Object.assign(process.env, {
        VERDA_BASE_URL: sim.baseUrl,
        VERDA_CLIENT_ID: sim.clientId,
        VERDA_CLIENT_SECRET: sim.clientSecret,
        VERDA_POLL_INTERVAL_MS: POLL_MS,
        VERDA_INSTANCE_TIMEOUT_MS: "60000",
        VERDA_VOLUME_TIMEOUT_MS: "60000",
      });
      const metrics = newMetrics();
      const runtime = verdaRuntime();
      runtime.metrics = metrics;
      runtime.tokens = {};
      runtime.catalogue = {};
      if (scenario.injectFaults) sim.setFaults(lifecycle.faults);
      const started = Date.now();
      let error: string | undefined;
      try {
        await lifecycle.run();
      } catch (e) {
        error = (e as Error).message;
      }
      const { api, token } = apiCalls(metrics);
      rows.push({
        scenario: scenario.name,
        lifecycle: lifecycle.name,
        apiCalls: api,
        tokenCalls: token,
        retries: metrics.retries,
        backoffMs: Math.round(metrics.backoffMs),
        wallMs: Date.now() - started,
        error,
      });
      if (scenario.name === "clean" && lifecycle.name.startsWith("Workshop")) detail = { ...metrics.calls };
      await sim.close();
    }
  }
  printTable(rows);
  console.log("\nCalls per route, clean workshop lifecycle:");
  for (const [route, n] of Object.entries(detail).sort()) console.log(`  ${String(n).padStart(4)}  ${route}`);
  console.log(`\nSimulator timing ${JSON.stringify(TIMING)}; poll interval ${POLL_MS} ms (production default 5000 ms), growing x1.5 up to 4x.`);
  console.log("Retry policy: production defaults (5 attempts, 500 ms base, 15 s cap, full jitter; Retry-After honoured).");
  if (rows.some((r) => r.error)) process.exitCode = 1;
}

function printTable(rows: Row[]): void {
  const header = ["scenario", "lifecycle", "API calls", "token calls", "retries", "backoff ms", "wall ms", "result"];
  const lines = rows.map((r) => [r.scenario, r.lifecycle, String(r.apiCalls), String(r.tokenCalls), String(r.retries), String(r.backoffMs), String(r.wallMs), r.error ? `FAILED: ${r.error}` : "ok"]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]) => "| " + cells.map((c, i) => (i >= 2 && i <= 6 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(" | ") + " |";
  console.log(fmt(header));
  console.log("|" + widths.map((w, i) => (i >= 2 && i <= 6 ? "-".repeat(w + 1) + ":" : "-".repeat(w + 2))).join("|") + "|");
  for (const l of lines) console.log(fmt(l));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
