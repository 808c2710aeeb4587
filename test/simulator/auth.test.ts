import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningSimulator } from "../../sim/simulator";
import { Caller, expectResponsesConform, startTestSim } from "./helpers";

describe("simulator: authentication", () => {
  let sim: RunningSimulator;
  let c: Caller;
  beforeAll(async () => ({ sim, c } = await startTestSim({ tokenTtlMs: 500 })));
  afterAll(async () => {
    expectResponsesConform(sim);
    await sim.close();
  });

  it("issues tokens for JSON and form-encoded client credentials", async () => {
    const creds = { grant_type: "client_credentials", client_id: sim.clientId, client_secret: sim.clientSecret };
    for (const form of [false, true]) {
      const r = await c.raw("POST", "/oauth2/token", creds, { form });
      expect(r.status).toBe(200);
      expect(r.json).toMatchObject({ token_type: "Bearer", scope: "cloud-api-v1", expires_in: 1 });
      expect(r.json.access_token.split(".")).toHaveLength(3);
    }
  });

  it("rejects bad credentials (401) and unknown grants (400)", async () => {
    const bad = await c.raw("POST", "/oauth2/token", { grant_type: "client_credentials", client_id: sim.clientId, client_secret: "nope" });
    expect(bad.status).toBe(401);
    expect(bad.json).toEqual({ code: "unauthorized_request", message: "Invalid client id or client secret" });
    const grant = await c.raw("POST", "/oauth2/token", { grant_type: "password" });
    expect(grant.status).toBe(400);
    expect(grant.json).toEqual({ code: "invalid_request", message: "unsupported grant type" });
    const junk = await c.raw("POST", "/oauth2/token", "{not json");
    expect(junk.status).toBe(400);
  });

  it("requires a bearer except on public catalogue routes", async () => {
    expect((await c.raw("GET", "/instance-types")).status).toBe(200);
    expect((await c.raw("GET", "/volume-types")).status).toBe(200);
    const locations = await c.raw("GET", "/locations");
    expect(locations.status).toBe(401);
    expect(locations.json.code).toBe("unauthorized_request");
    expect((await c.raw("GET", "/balance", undefined, { token: "garbage" })).status).toBe(401);
  });

  it("expires access tokens after the configured lifetime; refresh gives a working token", async () => {
    const login = await c.raw("POST", "/oauth2/token", { grant_type: "client_credentials", client_id: sim.clientId, client_secret: sim.clientSecret });
    const { access_token, refresh_token } = login.json;
    expect((await c.raw("GET", "/balance", undefined, { token: access_token })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 550));
    const expired = await c.raw("GET", "/balance", undefined, { token: access_token });
    expect(expired.status).toBe(401);
    expect(expired.json.message).toMatch(/expired/);
    const refreshed = await c.raw("POST", "/oauth2/token", { grant_type: "refresh_token", refresh_token });
    expect(refreshed.status).toBe(200);
    expect((await c.raw("GET", "/balance", undefined, { token: refreshed.json.access_token })).status).toBe(200);
    expect(sim.state().tokens.refreshed).toBeGreaterThanOrEqual(1);
  });

  it("expireTokens() kills access tokens now, and refresh tokens on request", async () => {
    const login = await c.raw("POST", "/oauth2/token", { grant_type: "client_credentials", client_id: sim.clientId, client_secret: sim.clientSecret });
    sim.expireTokens();
    expect((await c.raw("GET", "/balance", undefined, { token: login.json.access_token })).status).toBe(401);
    const again = await c.raw("POST", "/oauth2/token", { grant_type: "refresh_token", refresh_token: login.json.refresh_token });
    expect(again.status).toBe(200);
    sim.expireTokens(true);
    const dead = await c.raw("POST", "/oauth2/token", { grant_type: "refresh_token", refresh_token: again.json.refresh_token });
    expect(dead.status).toBe(401);
  });

  it("answers 404 for unknown /v1 paths and 403 Insufficient scope elsewhere", async () => {
    await c.login();
    expect((await c.call("GET", "/clusters")).status).toBe(404);
    const res = await fetch(`${sim.origin}/v2/anything`, { headers: { Authorization: `Bearer ${c.token}` } });
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual({ code: "forbidden_action", message: "Insufficient scope" });
  });
});
