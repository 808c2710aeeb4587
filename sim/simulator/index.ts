// In-process entry point: start a Verda API simulator on loopback for tests and rehearsals.
import type { AddressInfo } from "node:net";
import { addFaults, snapshot, wireFaultScheduling, type SimState } from "./control";
import { discontinue, getInstance } from "./instances";
import { createSimServer } from "./server";
import { resolveOptions, Sim } from "./state";
import type { Exchange, FaultRule, SimulatorOptions } from "./types";

export type { SimState } from "./control";
export type { Exchange, FaultRule, SimulatorOptions, Timing, RateLimitConfig, InstanceView, VolumeView } from "./types";
export { parseFaultRules } from "./faults";
export { DOCUMENTED_RATE_LIMITS } from "./ratelimit";
export { DEFAULT_TIMING } from "./state";

export interface RunningSimulator {
  /** Base URL of the simulated API, ending with /v1. */
  baseUrl: string;
  /** Server origin (control endpoints live under `${origin}/_sim/`). */
  origin: string;
  port: number;
  clientId: string;
  clientSecret: string;
  state(): SimState;
  /** Adds fault rules (one or an array); returns them with their ids. */
  setFaults(rules: FaultRule | FaultRule[]): FaultRule[];
  clearFaults(): void;
  /** Expires every access token now (and refresh tokens with `includeRefresh`). */
  expireTokens(includeRefresh?: boolean): void;
  /** Moves the billing clock forward by simulated milliseconds. */
  advanceClock(simMs: number): void;
  /** Discontinues an instance now, as a spot eviction does (volumes detached, billing stops). */
  evictInstance(id: string): void;
  /** Recorded API exchanges (for conformance checks). */
  exchanges(): Exchange[];
  reset(): void;
  close(): Promise<void>;
}

export async function startSimulator(options: SimulatorOptions = {}): Promise<RunningSimulator> {
  const opts = resolveOptions(options);
  const sim = new Sim(opts);
  wireFaultScheduling(sim);
  if (opts.initialFaults.length > 0) addFaults(sim, opts.initialFaults);
  const server = createSimServer(sim);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = opts.host.includes(":") ? `[${opts.host}]` : opts.host;
  const origin = `http://${host}:${port}`;
  return {
    baseUrl: `${origin}/v1`,
    origin,
    port,
    clientId: opts.clientId,
    clientSecret: opts.clientSecret,
    state: () => snapshot(sim),
    setFaults: (rules) => addFaults(sim, rules),
    clearFaults: () => sim.faults.clear(),
    expireTokens: (includeRefresh = false) => sim.tokens.expireAll(includeRefresh),
    advanceClock: (simMs) => sim.clock.advance(simMs),
    evictInstance: (id) => discontinue(sim, getInstance(sim, id)),
    exchanges: () => [...sim.exchanges],
    reset: () => sim.reset(),
    close: async () => {
      sim.cancelTimers();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
