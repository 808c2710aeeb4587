// Control endpoints under /_sim/ for tests and operators: state, faults, reset, clock, balance,
// token expiry and recorded exchanges. JSON in, JSON out; errors use the same {code, message}.
import type { MeterView } from "./billing";
import { deploymentView } from "./deployments";
import { bodyObject, empty, fail, ok, parseBody, type ApiResponse } from "./http";
import { discontinue, getInstance, instanceView } from "./instances";
import type { Sim } from "./state";
import type { FaultRule, InstanceView, TrashedVolumeView, VolumeView } from "./types";
import { scheduleSfsFaults, volumeView } from "./volumes";

export interface SimState {
  clock: { now: string; speed: number };
  balance: number;
  currency: "usd" | "eur";
  total_cost: number;
  burn_rate_per_hour: number;
  meters: MeterView[];
  instances: InstanceView[];
  /** Every volume ever created, including trashed and permanently deleted ones. */
  volumes: Array<VolumeView | TrashedVolumeView>;
  ssh_keys: Array<{ id: string; name: string }>;
  scripts: Array<{ id: string; name: string }>;
  /** Container deployments with their scaling and replicas (no secret values anywhere). */
  container_deployments: Array<ReturnType<typeof deploymentView> & { scaling: unknown; replicas: Array<{ id: string; status: string }> }>;
  secrets: string[];
  file_secrets: string[];
  registry_credentials: string[];
  faults: FaultRule[];
  tokens: { issued: number; refreshed: number };
  rate_limits: { enabled: boolean; throttled: number };
  requests: number;
}

export function snapshot(sim: Sim): SimState {
  return {
    clock: { now: sim.clock.iso(), speed: sim.clock.getSpeed() },
    balance: sim.billing.balance(),
    currency: sim.billing.currency,
    total_cost: sim.billing.totalCost(),
    burn_rate_per_hour: sim.billing.burnRatePerHour(),
    meters: sim.billing.view(),
    instances: [...sim.instances.values()].filter((i) => !i.deleted).map((i) => instanceView(sim, i)),
    volumes: [...sim.volumes.values()].map((v) => volumeView(sim, v)),
    ssh_keys: [...sim.sshKeys.values()].map((k) => ({ id: k.id, name: k.name })),
    scripts: [...sim.scripts.values()].map((s) => ({ id: s.id, name: s.name })),
    container_deployments: [...sim.deployments.values()].map((d) => ({ ...deploymentView(d), scaling: structuredClone(d.scaling), replicas: d.replicas.map((r) => ({ id: r.id, status: r.status })) })),
    secrets: [...sim.secrets.keys()],
    file_secrets: [...sim.fileSecrets.keys()],
    registry_credentials: [...sim.registryCredentials.keys()],
    faults: sim.faults.list(),
    tokens: { issued: sim.tokens.issued, refreshed: sim.tokens.refreshed },
    rate_limits: { enabled: sim.limiter !== null, throttled: sim.limiter?.throttled ?? 0 },
    requests: sim.requestCount,
  };
}

/** Adds fault rules (one or an array) and schedules the resource-level ones. */
export function addFaults(sim: Sim, input: unknown): FaultRule[] {
  try {
    return sim.faults.add(input);
  } catch (err) {
    throw fail.badRequest(err instanceof Error ? err.message : String(err));
  }
}

export function wireFaultScheduling(sim: Sim): void {
  sim.faults.onAdded = (rules) => {
    const sfs = rules.filter((r) => r.type === "sfs_pseudo_path_change");
    if (sfs.length > 0) scheduleSfsFaults(sim, sfs, [...sim.volumes.values()]);
  };
}

function num(b: Record<string, unknown>, field: string): number | undefined {
  const v = b[field];
  if (v === undefined) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v)) throw fail.badRequest(`${field} must be a number`);
  return v;
}

export function handleControl(sim: Sim, methodRaw: string, url: URL, rawBody: string): ApiResponse {
  const method = methodRaw.toUpperCase();
  const route = `${method} ${url.pathname.replace(/\/+$/, "")}`;
  const body = () => parseBody(rawBody, "application/json");
  switch (route) {
    case "GET /_sim/state":
      return ok(snapshot(sim));
    case "GET /_sim/faults":
      return ok(sim.faults.list());
    case "POST /_sim/faults":
      return ok({ added: addFaults(sim, body()), active: sim.faults.list() });
    case "DELETE /_sim/faults":
      sim.faults.clear();
      return empty(204);
    case "POST /_sim/reset":
      sim.reset();
      return empty(204);
    case "POST /_sim/clock": {
      const b = bodyObject(body());
      const ms = (num(b, "advance_ms") ?? 0) + (num(b, "advance_hours") ?? 0) * 3_600_000;
      if (ms < 0) throw fail.badRequest("the clock only moves forward");
      sim.clock.advance(ms);
      return ok({ now: sim.clock.iso() });
    }
    case "POST /_sim/balance": {
      const b = bodyObject(body());
      const set = num(b, "amount");
      const add = num(b, "add");
      if (set !== undefined) sim.billing.setBalance(set);
      if (add !== undefined) sim.billing.addCredit(add);
      return ok({ amount: sim.billing.balance(), currency: sim.billing.currency });
    }
    case "POST /_sim/tokens/expire": {
      const b = bodyObject(body());
      sim.tokens.expireAll(b.include_refresh === true);
      return empty(204);
    }
    case "GET /_sim/exchanges":
      return ok(sim.exchanges);
    case "DELETE /_sim/exchanges":
      sim.exchanges = [];
      return empty(204);
    default: {
      const evict = /^POST \/_sim\/instances\/([^/]+)\/evict$/.exec(route);
      if (evict) {
        const inst = getInstance(sim, evict[1]!);
        discontinue(sim, inst);
        return ok(instanceView(sim, inst));
      }
      throw fail.notFound(`Unknown control endpoint: ${method} ${url.pathname}`);
    }
  }
}
