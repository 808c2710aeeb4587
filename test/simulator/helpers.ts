// Test helpers: a tiny fetch-based caller for the simulator and a polling wait.
import { expect } from "vitest";
import { startSimulator, type RunningSimulator, type SimulatorOptions } from "../../sim/simulator";
import { validateExchanges } from "../support/openapi";

export const FAST_TIMING = {
  orderedMs: 20,
  provisioningMs: 40,
  instanceActionMs: 20,
  instanceDeleteMs: 20,
  volumeCreateMs: 20,
  volumeAttachMs: 20,
};

export const PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG4rT3vTt99Ox5kndS4HmgTrKBT8SKzhK4rhGkEVGlCI test@sim";

export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- test convenience
}

export class Caller {
  token: string | undefined;

  constructor(readonly sim: RunningSimulator) {}

  async login(): Promise<string> {
    const r = await this.raw("POST", "/oauth2/token", {
      grant_type: "client_credentials",
      client_id: this.sim.clientId,
      client_secret: this.sim.clientSecret,
    });
    expect(r.status).toBe(200);
    this.token = r.json.access_token as string;
    return this.token;
  }

  /** Calls `${baseUrl}${path}` without touching the token. */
  async raw(method: string, path: string, body?: unknown, init: { token?: string; form?: boolean; contentType?: string } = {}): Promise<Reply> {
    const headers: Record<string, string> = {};
    if (init.token) headers.Authorization = `Bearer ${init.token}`;
    let payload: string | undefined;
    if (body !== undefined) {
      if (init.form) {
        payload = new URLSearchParams(body as Record<string, string>).toString();
        headers["Content-Type"] = "application/x-www-form-urlencoded";
      } else {
        payload = typeof body === "string" ? body : JSON.stringify(body);
        headers["Content-Type"] = init.contentType ?? "application/json";
      }
    }
    const res = await fetch(this.sim.baseUrl + path, { method, headers, body: payload });
    const text = await res.text();
    let json: unknown;
    try {
      json = text === "" ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
  }

  /** Authenticated call (logs in first if needed). */
  async call(method: string, path: string, body?: unknown): Promise<Reply> {
    if (!this.token) await this.login();
    return this.raw(method, path, body, { token: this.token });
  }

  async control(method: string, path: string, body?: unknown): Promise<Reply> {
    const res = await fetch(`${this.sim.origin}/_sim/${path}`, {
      method,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, text, json: text ? JSON.parse(text) : undefined };
  }

  // ---- shortcuts

  async createInstance(overrides: Record<string, unknown> = {}): Promise<string> {
    const r = await this.call("POST", "/instances", {
      instance_type: "CPU.4V.16G",
      image: "ubuntu-24.04",
      hostname: "sim-test",
      location_code: "FIN-01",
      ...overrides,
    });
    expect(r.status, r.text).toBe(202);
    return r.text;
  }

  async instance(id: string): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
    const r = await this.call("GET", `/instances/${id}`);
    expect(r.status, r.text).toBe(200);
    return r.json;
  }

  async volume(id: string): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
    const r = await this.call("GET", `/volumes/${id}`);
    expect(r.status, r.text).toBe(200);
    return r.json;
  }

  async createVolume(overrides: Record<string, unknown> = {}): Promise<string> {
    const r = await this.call("POST", "/volumes", { type: "NVMe", location_code: "FIN-01", size: 10, name: "data", ...overrides });
    expect(r.status, r.text).toBe(202);
    return r.text;
  }

  async waitInstance(id: string, status: string, timeoutMs = 3000): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
    return waitFor(async () => {
      const i = await this.instance(id);
      return i.status === status ? i : undefined;
    }, timeoutMs, `instance ${id} to be ${status}`);
  }

  async waitVolume(id: string, status: string, timeoutMs = 3000): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
    return waitFor(async () => {
      const v = await this.volume(id);
      return v.status === status ? v : undefined;
    }, timeoutMs, `volume ${id} to be ${status}`);
  }

  async runningInstance(overrides: Record<string, unknown> = {}): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
    return this.waitInstance(await this.createInstance(overrides), "running");
  }

  async offlineInstance(overrides: Record<string, unknown> = {}): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
    const i = await this.runningInstance(overrides);
    expect((await this.call("PUT", "/instances", { action: "shutdown", id: i.id })).status).toBe(202);
    return this.waitInstance(i.id, "offline");
  }
}

export async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export async function startTestSim(options: SimulatorOptions = {}): Promise<{ sim: RunningSimulator; c: Caller }> {
  const sim = await startSimulator({ timing: FAST_TIMING, ...options });
  return { sim, c: new Caller(sim) };
}

/** Every response the simulator gave must conform to the OpenAPI document. */
export function expectResponsesConform(sim: RunningSimulator): void {
  expect(validateExchanges(sim.exchanges(), { checkRequest: false })).toEqual([]);
}
