// Client behaviour against a scripted fake fetch: auth, retries, error typing, ID parsing.
import { describe, expect, it } from "vitest";
import { renewLeadMs } from "../../infra/verda/auth";
import { VerdaClient, type VerdaExchange } from "../../infra/verda/client";
import { isVerdaApiError } from "../../infra/verda/errors";
import { parseCreatedId } from "../../infra/verda/ids";
import { backoffDelayMs, DEFAULT_RETRY_POLICY, parseRetryAfterMs } from "../../infra/verda/retry";

const SECRET = "fake-secret-7c1d";
type Handler = (req: { method: string; path: string; headers: Record<string, string>; body: string }) => Response | Promise<Response>;

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(body === undefined ? null : JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
}
const tokenAnswer = (n: number, expiresIn = 3600) => json(200, { access_token: `access-${n}`, token_type: "Bearer", expires_in: expiresIn, refresh_token: `refresh-${n}`, scope: "cloud-api-v1" });

function fakeClient(handler: Handler, extra: Partial<ConstructorParameters<typeof VerdaClient>[0]> = {}) {
  const seen: { method: string; path: string; headers: Record<string, string>; body: string }[] = [];
  const exchanges: VerdaExchange[] = [];
  const client = new VerdaClient({
    clientId: "cid",
    clientSecret: SECRET,
    baseUrl: "http://fake.local/v1",
    retry: { baseDelayMs: 1, maxDelayMs: 5 },
    onExchange: (x) => exchanges.push(x),
    fetch: (async (url: string, init: RequestInit) => {
      const req = { method: String(init.method), path: new URL(url).pathname, headers: init.headers as Record<string, string>, body: String(init.body ?? "") };
      seen.push(req);
      return handler(req);
    }) as typeof fetch,
    ...extra,
  });
  return { client, seen, exchanges };
}

describe("retry timing", () => {
  it("parses Retry-After seconds and HTTP dates", () => {
    expect(parseRetryAfterMs("2")).toBe(2000);
    const now = Date.parse("2026-11-23T12:00:00Z");
    expect(parseRetryAfterMs("Mon, 23 Nov 2026 12:00:03 GMT", now)).toBe(3000);
    expect(parseRetryAfterMs("Mon, 23 Nov 2026 11:00:00 GMT", now)).toBe(0);
    expect(parseRetryAfterMs("soon")).toBeUndefined();
    expect(parseRetryAfterMs(null)).toBeUndefined();
  });

  it("caps exponential backoff and applies jitter", () => {
    expect(backoffDelayMs(1, DEFAULT_RETRY_POLICY, () => 1)).toBe(500);
    expect(backoffDelayMs(4, DEFAULT_RETRY_POLICY, () => 1)).toBe(4000);
    expect(backoffDelayMs(30, DEFAULT_RETRY_POLICY, () => 1)).toBe(DEFAULT_RETRY_POLICY.maxDelayMs);
    expect(backoffDelayMs(4, DEFAULT_RETRY_POLICY, () => 0.25)).toBe(1000);
  });

  it("renews a token a tenth of its life (at most 60 s) before expiry", () => {
    expect(renewLeadMs(3600)).toBe(60_000);
    expect(renewLeadMs(2)).toBe(200);
  });
});

describe("created IDs", () => {
  it("accepts a bare UUID, a JSON string and {id}", () => {
    const id = "0dc16ed0-f7fb-4eec-a5e6-004e082bb1f4";
    expect(parseCreatedId(undefined, `${id}\n`)).toBe(id);
    expect(parseCreatedId(id, `"${id}"`)).toBe(id);
    expect(parseCreatedId({ id, extra: 1 }, "")).toBe(id);
    expect(() => parseCreatedId({}, "{}")).toThrow(/recognisable ID/);
  });
});

describe("VerdaClient", () => {
  it("falls back to a form-encoded token request when JSON is rejected", async () => {
    const { client, seen } = fakeClient((req) => {
      if (req.path === "/v1/oauth2/token") {
        if (req.headers["content-type"] === "application/json") return json(400, { code: "invalid_request", message: "unsupported grant type" });
        return tokenAnswer(1);
      }
      return json(200, []);
    });
    await client.listLocations();
    await client.listLocations();
    const tokenCalls = seen.filter((r) => r.path === "/v1/oauth2/token");
    expect(tokenCalls.map((r) => r.headers["content-type"])).toEqual(["application/json", "application/x-www-form-urlencoded"]);
    expect(tokenCalls[1]!.body).toContain("grant_type=client_credentials");
    expect(seen.filter((r) => r.path === "/v1/locations").every((r) => r.headers.authorization === "Bearer access-1")).toBe(true);
  });

  it("refreshes before expiry and logs in again when the refresh is refused", async () => {
    let logins = 0;
    const grants: string[] = [];
    const { client } = fakeClient((req) => {
      if (req.path === "/v1/oauth2/token") {
        const body = JSON.parse(req.body);
        grants.push(body.grant_type);
        if (body.grant_type === "refresh_token") return json(401, { code: "unauthorized_request", message: "refresh token expired" });
        expect(Object.keys(body).sort()).toEqual(["client_id", "client_secret", "grant_type"]);
        logins += 1;
        return tokenAnswer(logins, 0.05); // 50 ms tokens: renewed on every call after expiry
      }
      return json(200, []);
    });
    await client.listLocations();
    await new Promise((r) => setTimeout(r, 80));
    await client.listLocations();
    expect(grants).toEqual(["client_credentials", "refresh_token", "client_credentials"]);
  });

  it("re-authenticates once on a 401 mid-run and repeats the call", async () => {
    let logins = 0;
    const { client, seen } = fakeClient((req) => {
      if (req.path === "/v1/oauth2/token") return tokenAnswer(++logins);
      if (req.headers.authorization === "Bearer access-1") return json(401, { code: "unauthorized_request", message: "token expired" });
      return json(200, [{ code: "FIN-01", name: "Finland 1", country_code: "FI" }]);
    });
    expect(await client.listLocations()).toHaveLength(1);
    expect(logins).toBe(2);
    expect(client.metrics.reauthentications).toBe(1);
    expect(seen.filter((r) => r.path === "/v1/locations")).toHaveLength(2);
  });

  it("honours Retry-After on 429 and records the wait", async () => {
    let calls = 0;
    const { client } = fakeClient((req) => {
      if (req.path === "/v1/oauth2/token") return tokenAnswer(1);
      calls += 1;
      return calls === 1 ? json(429, { code: "rate_limit_exceeded", message: "slow down" }, { "retry-after": "1" }) : json(200, []);
    });
    const started = Date.now();
    await client.listVolumes();
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(client.metrics.backoffMs).toBeGreaterThanOrEqual(950);
    expect(client.metrics.calls["GET /v1/volumes"]).toBe(2);
  });

  it("retries 5xx with backoff, then raises a typed error without secrets", async () => {
    const { client, exchanges } = fakeClient((req) => {
      if (req.path === "/v1/oauth2/token") return tokenAnswer(1);
      return json(500, { code: "server_error", message: "boom" });
    });
    const error = await client.getInstance("abc").catch((e: unknown) => e);
    expect(isVerdaApiError(error)).toBe(true);
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({ status: 500, code: "server_error", apiMessage: "boom", method: "GET", path: "/v1/instances/abc" });
    expect(client.metrics.calls["GET /v1/instances/{instance_id}"]).toBe(DEFAULT_RETRY_POLICY.maxAttempts);
    expect(String((error as Error).message) + JSON.stringify(error)).not.toMatch(/access-1|fake-secret/);
    const tokenExchange = exchanges.find((x) => x.path === "/v1/oauth2/token")!;
    expect(JSON.stringify(tokenExchange)).not.toContain(SECRET);
    expect(JSON.stringify(tokenExchange)).not.toContain("access-1");
  });

  it("does not retry a 503 on deploy, nor a 4xx", async () => {
    const { client, seen } = fakeClient((req) => {
      if (req.path === "/v1/oauth2/token") return tokenAnswer(1);
      if (req.method === "POST") return json(503, { code: "service_unavailable", message: "No capacity available" });
      return json(400, { code: "invalid_request", message: "bad" });
    });
    await expect(client.deployInstance({ instance_type: "x", image: "i", hostname: "h", location_code: "FIN-01" })).rejects.toMatchObject({ status: 503 });
    await expect(client.listVolumes()).rejects.toMatchObject({ status: 400, code: "invalid_request" });
    expect(seen.filter((r) => r.path !== "/v1/oauth2/token")).toHaveLength(2);
  });

  it("retries network failures of idempotent calls and times out each request", async () => {
    let calls = 0;
    const { client } = fakeClient(
      async (req) => {
        if (req.path === "/v1/oauth2/token") return tokenAnswer(1);
        calls += 1;
        if (calls === 1) throw Object.assign(new TypeError("fetch failed"), { cause: { code: "ECONNRESET" } });
        return json(200, { id: "v1", status: "detached" });
      },
      { requestTimeoutMs: 50 },
    );
    expect(await client.getVolume("v1")).toMatchObject({ id: "v1" });
    expect(calls).toBe(2);
  });

  it("reads one-element arrays for SSH keys and 404 as absent", async () => {
    const { client } = fakeClient((req) => {
      if (req.path === "/v1/oauth2/token") return tokenAnswer(1);
      if (req.path === "/v1/ssh-keys/k1") return json(200, [{ id: "k1", name: "n", key: "ssh-ed25519 AAAA", fingerprint: null, created_by_user_id: null }]);
      return json(404, { code: "not_found", message: "nope" });
    });
    expect(await client.getSshKey("k1")).toMatchObject({ id: "k1" });
    expect(await client.getSshKey("k2")).toBeUndefined();
    await expect(client.deleteSshKey("k2")).resolves.toBeUndefined();
  });

  it("adopts an instance created by a deploy whose answer was a 5xx instead of deploying twice", async () => {
    const posts: string[] = [];
    const { client } = fakeClient((req) => {
      if (req.path === "/v1/oauth2/token") return tokenAnswer(1);
      if (req.method === "POST") {
        posts.push(req.body);
        return json(502, { code: "server_error", message: "bad gateway" });
      }
      if (req.path === "/v1/instances") {
        return json(200, [
          { id: "old", hostname: "gpu-1", status: "running", created_at: "2020-01-01T00:00:00Z" },
          { id: "new", hostname: "gpu-1", status: "provisioning", created_at: new Date().toISOString() },
        ]);
      }
      return json(404, { code: "not_found", message: "x" });
    });
    expect(await client.deployInstance({ instance_type: "t", image: "i", hostname: "gpu-1", location_code: "FIN-01" })).toBe("new");
    expect(posts).toHaveLength(1);
  });
});
