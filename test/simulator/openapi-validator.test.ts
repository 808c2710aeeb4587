// The validator itself: it must catch real violations, and every allow-list entry must be needed.
import { describe, expect, it } from "vitest";
import { ALLOWLIST, findOperation, openApiPath, validateExchange, validateRequest, validateResponse } from "../support/openapi";

const INSTANCE_ID = "0dc16ed0-f7fb-4eec-a5e6-004e082bb1f4";

describe("OpenAPI validator", () => {
  it("reads the repository's copy of the document", () => {
    expect(openApiPath()).toMatch(/(^|\/)api\/verda\/openapi\.json$/);
    expect(findOperation("GET", "/v1/volumes/trash")?.template).toBe("/v1/volumes/trash");
    expect(findOperation("GET", `/v1/volumes/${INSTANCE_ID}`)?.template).toBe("/v1/volumes/{volume_id}");
    expect(findOperation("PATCH", "/v1/instances")).toBeUndefined();
  });

  it("flags bad requests: missing and misspelt fields, wrong types, bad ids and queries", () => {
    expect(validateRequest("POST", "/v1/instances", { instance_type: "CPU.4V.16G", image: "ubuntu-24.04", hostname: "h", location_code: "FIN-01" })).toEqual([]);
    expect(validateRequest("POST", "/v1/instances", { instance_type: "CPU.4V.16G", image: "u", hostname: "h" }).join()).toMatch(/location_code/);
    expect(validateRequest("POST", "/v1/instances", { instance_type: "CPU.4V.16G", image: "u", hostname: "h", location_code: "FIN-01", locationCode: "x" }).join()).toMatch(/'locationCode'/);
    expect(validateRequest("POST", "/v1/volumes", { type: "NVMe", location_code: "FIN-01", size: "10", name: "v" }).join()).toMatch(/size must be number/);
    expect(validateRequest("PUT", "/v1/instances", { action: "delete", id: "abc" }).join()).toMatch(/uuid/);
    expect(validateRequest("PUT", "/v1/instances", { action: "explode", id: INSTANCE_ID }).join()).toMatch(/allowed values/);
    expect(validateRequest("GET", "/v1/instances?status=sleeping").join()).toMatch(/status/);
    expect(validateRequest("GET", "/v1/instances?stauts=running").join()).toMatch(/unknown query parameter 'stauts'/);
    expect(validateRequest("POST", "/v1/ssh-keys").join()).toMatch(/required/);
    expect(validateRequest("GET", "/v1/balance", {}).join()).toMatch(/no request body/);
    expect(validateRequest("GET", "/v1/nothing-here").join()).toMatch(/no such operation/);
  });

  it("flags bad responses: wrong types, missing fields, undeclared statuses, non-error bodies", () => {
    expect(validateResponse("GET", "/v1/balance", 200, { amount: 1, currency: "usd" })).toEqual([]);
    expect(validateResponse("GET", "/v1/balance", 200, { amount: "1", currency: "usd" }).join()).toMatch(/amount must be number/);
    expect(validateResponse("GET", "/v1/balance", 200, { amount: 1 }).join()).toMatch(/currency/);
    expect(validateResponse("GET", "/v1/balance", 201, {}).join()).toMatch(/not declared/);
    expect(validateResponse("GET", "/v1/locations", 404, { error: "nope" }).join()).toMatch(/code/);
    expect(validateResponse("GET", "/v1/locations", 429, { code: "rate_limit_exceeded", message: "slow down" })).toEqual([]);
    expect(validateResponse("GET", "/v1/locations", 418, { code: "teapot", message: "x" }).join()).toMatch(/not declared/);
    expect(validateResponse("GET", `/v1/instances/${INSTANCE_ID}`, 200, { id: INSTANCE_ID }).join()).toMatch(/required property/);
    expect(validateResponse("GET", "/v1/locations", 200, [{ code: "FIN-01", name: "Finland 1" }]).join()).toMatch(/country_code/);
  });

  it("applies each allow-list entry (and nothing more)", () => {
    expect(ALLOWLIST.length).toBeLessThanOrEqual(12);
    for (const d of ALLOWLIST) expect(d.reason.length, d.id).toBeGreaterThan(40);
    const key = { id: "k", name: "n", key: "ssh-ed25519 AAAA", fingerprint: null, created_by_user_id: null };
    expect(validateResponse("GET", "/v1/ssh-keys/k", 200, [key])).toEqual([]);
    expect(validateResponse("GET", "/v1/ssh-keys/k", 200, key)).toEqual([]);
    expect(validateResponse("GET", "/v1/ssh-keys/k", 200, [key, key]).join()).toMatch(/must be object/);
    expect(validateResponse("DELETE", `/v1/volumes/${INSTANCE_ID}`, 204)).toEqual([]);
    expect(validateResponse("DELETE", `/v1/volumes/${INSTANCE_ID}`, 204, { x: 1 }).join()).toMatch(/empty/);
    expect(validateResponse("DELETE", "/v1/ssh-keys/k", 204).join()).toMatch(/not declared/);
    // nullable only where allowed
    const volume = {
      id: "v", instance_id: null, instances: [{ id: INSTANCE_ID, ip: null }], name: "n", created_at: "t", status: "detached", size: 1,
      is_os_volume: false, target: null, type: "NVMe", location: "FIN-01", ssh_key_ids: [], pseudo_path: "p",
      create_directory_command: "c", mount_command: "m", filesystem_to_fstab_command: "f", contract: "PAY_AS_YOU_GO",
      base_hourly_cost: 0, monthly_price: 0, currency: "usd", long_term: null, tags: [],
    };
    expect(validateResponse("GET", "/v1/volumes", 200, [volume])).toEqual([]);
    expect(validateResponse("GET", "/v1/volumes", 200, [{ ...volume, name: null }]).join()).toMatch(/name must be string/);
    expect(validateResponse("GET", "/v1/volumes", 200, [{ ...volume, instances: [42] }]).join()).toMatch(/instances/);
  });

  it("validates raw exchanges, including bare-id create bodies and form-encoded token requests", () => {
    expect(validateExchange({ method: "POST", url: "/v1/instances", status: 202, requestBody: JSON.stringify({ instance_type: "t", image: "i", hostname: "h", location_code: "FIN-01" }), requestContentType: "application/json", responseBody: INSTANCE_ID, responseContentType: "text/plain" })).toEqual([]);
    expect(validateExchange({ method: "POST", url: "http://127.0.0.1:1/v1/oauth2/token", status: 200, requestBody: "grant_type=client_credentials&client_id=a&client_secret=b", requestContentType: "application/x-www-form-urlencoded", responseBody: JSON.stringify({ access_token: "a", token_type: "Bearer", expires_in: 1, refresh_token: "r", scope: "cloud-api-v1" }), responseContentType: "application/json" })).toEqual([]);
    expect(validateExchange({ method: "GET", url: "/v1/balance", status: 200, responseBody: "1000", responseContentType: "text/plain" }).join()).toMatch(/Content-Type/);
    expect(validateExchange({ method: "POST", url: "/v1/ssh-keys", status: 201, requestBody: "{oops", requestContentType: "application/json", responseBody: "", responseContentType: null }).join()).toMatch(/not JSON/);
  });
});
