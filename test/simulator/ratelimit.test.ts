import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningSimulator } from "../../sim/simulator";
import { Caller, expectResponsesConform, startTestSim } from "./helpers";

describe("simulator: rate limits", () => {
  let sim: RunningSimulator;
  let c: Caller;
  beforeAll(async () => ({ sim, c } = await startTestSim({ rateLimits: { endpointPerWindow: 5, projectPerWindow: 8, windowMs: 2000 } })));
  afterAll(async () => {
    expectResponsesConform(sim);
    await sim.close();
  });

  it("limits per method+path, then per project, with 429 and Retry-After; the window resets", async () => {
    await c.login();
    for (let n = 0; n < 5; n++) {
      const r = await c.call("GET", "/balance");
      expect(r.status).toBe(200);
      expect(r.headers.get("ratelimit-policy")).toBe('"project";q=8;w=2, "endpoint";q=5;w=2');
      expect(r.headers.get("ratelimit")).toMatch(new RegExp(`"project";r=${7 - n};t=\\d+, "endpoint";r=${4 - n};t=\\d+`));
    }
    const limited = await c.call("GET", "/balance");
    expect(limited.status).toBe(429);
    expect(limited.json).toEqual({ code: "rate_limit_exceeded", message: "Too many requests" });
    const retry = Number(limited.headers.get("retry-after"));
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(retry).toBeLessThanOrEqual(2);
    // Other paths still have endpoint budget until the project budget (8) is used up.
    for (let n = 0; n < 3; n++) expect((await c.call("GET", "/locations")).status).toBe(200);
    const project = await c.call("GET", "/ssh-keys");
    expect(project.status).toBe(429);
    // Public and token routes are not limited.
    expect((await c.raw("GET", "/instance-types")).status).toBe(200);
    await new Promise((r) => setTimeout(r, 2100));
    expect((await c.call("GET", "/balance")).status).toBe(200);
    expect(sim.state().rate_limits).toEqual({ enabled: true, throttled: 2 });
  });

  it("uses the documented limits (120/min on GET /instances) when enabled with defaults", async () => {
    const { sim: s2, c: c2 } = await startTestSim({ rateLimits: true });
    try {
      await c2.login();
      const statuses: number[] = [];
      for (let n = 0; n < 121; n++) statuses.push((await c2.call("GET", "/instances")).status);
      expect(statuses.slice(0, 120).every((s) => s === 200)).toBe(true);
      expect(statuses[120]).toBe(429);
      for (let n = 0; n < 60; n++) expect((await c2.call("GET", "/balance")).status).toBe(200);
      const r = await c2.call("GET", "/balance");
      expect(r.status).toBe(429);
      expect(Number(r.headers.get("retry-after"))).toBeGreaterThan(50);
    } finally {
      await s2.close();
    }
  });

  it("is off by default in-process", async () => {
    const { sim: s3, c: c3 } = await startTestSim();
    try {
      for (let n = 0; n < 70; n++) expect((await c3.call("GET", "/balance")).status).toBe(200);
      expect(s3.state().rate_limits.enabled).toBe(false);
    } finally {
      await s3.close();
    }
  });
});
