// Shared set-up for the money tests: an in-process Verda simulator, a real client and the money
// API over it, plus small deploy/wait helpers.
import { startSimulator, type RunningSimulator, type SimulatorOptions } from "../../sim/simulator";
import type { VerdaClient } from "../../infra/verda/client";
import { verdaForMoney, type MoneyApi } from "../../infra/money";

export const FAST = { orderedMs: 5, provisioningMs: 10, instanceActionMs: 5, instanceDeleteMs: 5, volumeCreateMs: 5, volumeAttachMs: 5 };

export interface SimRig {
  sim: RunningSimulator;
  client: VerdaClient;
  api: MoneyApi;
  close(): Promise<void>;
}

export async function simRig(options: SimulatorOptions = {}): Promise<SimRig> {
  const sim = await startSimulator({ timing: FAST, ...options });
  const { client, api } = verdaForMoney({ clientId: sim.clientId, clientSecret: sim.clientSecret, baseUrl: sim.baseUrl, retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 20 } });
  return { sim, client, api, close: () => sim.close() };
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 5_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export async function deployRunning(client: VerdaClient, spec: { hostname: string; instanceType?: string; location?: string; osVolumeGb?: number; spot?: boolean; existingVolumes?: string[] }) {
  const id = await client.deployInstance({
    instance_type: spec.instanceType ?? "1H100.80S.32V",
    image: spec.instanceType?.startsWith("CPU.") ? "ubuntu-24.04" : "ubuntu-24.04-cuda-12.8-open-docker",
    hostname: spec.hostname,
    description: "money test",
    location_code: spec.location ?? "FIN-01",
    is_spot: spec.spot ?? false,
    os_volume: { name: `${spec.hostname}-os`, size: spec.osVolumeGb ?? 100 },
    existing_volumes: spec.existingVolumes ?? [],
  });
  return waitFor(`instance ${id} running`, async () => {
    const i = await client.getInstance(id);
    return i && i.status === "running" && i.os_volume_id ? i : undefined;
  });
}

export async function createVolume(client: VerdaClient, spec: { name: string; type?: "NVMe" | "NVMe_Shared"; sizeGb: number; location?: string }) {
  const id = await client.createVolume({ type: spec.type ?? "NVMe", name: spec.name, size: spec.sizeGb, location_code: spec.location ?? "FIN-01" });
  return waitFor(`volume ${id} ready`, async () => {
    const v = await client.getVolume(id);
    return v && (v.status === "detached" || v.status === "created") ? v : undefined;
  });
}
