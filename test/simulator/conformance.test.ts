// Conformance: a tour over every simulated endpoint with valid requests; every request and
// response recorded by the simulator must validate against Verda's OpenAPI document.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningSimulator } from "../../sim/simulator";
import { findOperation, validateExchanges } from "../support/openapi";
import { Caller, PUBLIC_KEY, startTestSim } from "./helpers";

describe("simulator: OpenAPI conformance", () => {
  let sim: RunningSimulator;
  let c: Caller;
  beforeAll(async () => ({ sim, c } = await startTestSim()));
  afterAll(async () => sim.close());

  it("every request and response of a full tour conforms to the document", async () => {
    await c.raw("POST", "/oauth2/token", { grant_type: "client_credentials", client_id: sim.clientId, client_secret: sim.clientSecret }, { form: true });
    const login = await c.raw("POST", "/oauth2/token", { grant_type: "client_credentials", client_id: sim.clientId, client_secret: sim.clientSecret });
    await c.raw("POST", "/oauth2/token", { grant_type: "refresh_token", refresh_token: login.json.refresh_token });
    c.token = login.json.access_token;
    await c.raw("POST", "/oauth2/token", { grant_type: "client_credentials", client_id: "x", client_secret: "y" });

    for (const path of [
      "/balance", "/locations", "/instance-types", "/instance-types?currency=eur", "/volume-types", "/volume-types?currency=usd",
      "/instance-availability", "/instance-availability?is_spot=false&location_code=FIN-01", "/instance-availability/CPU.4V.16G?location_code=FIN-03",
      "/images", "/images?instance_type=1H100.80S.32V", "/long-term/periods/instances", "/long-term/periods",
    ]) {
      expect((await c.call("GET", path)).status, path).toBe(200);
    }
    await c.call("GET", "/images?instance_type=NOPE"); // 404

    const key = (await c.call("POST", "/ssh-keys", { name: "k", key: PUBLIC_KEY })).text;
    await c.call("GET", "/ssh-keys");
    await c.call("GET", `/ssh-keys/${key}`);
    await c.call("GET", `/sshkeys/${key}`);
    const script = (await c.call("POST", "/scripts", { name: "s", script: "echo" })).text;
    await c.call("GET", "/scripts?page=1&pageSize=10&orderBy=created_at&orderDirection=desc&name=s");
    await c.call("GET", `/scripts/${script}`);

    const sfs = await c.createVolume({ type: "NVMe_Shared", name: "sfs", size: 100, tags: [{ key: "role", value: "models" }] });
    const scratch = await c.createVolume({ name: "scratch", size: 20 });
    await c.waitVolume(scratch, "detached");
    const id = await c.createInstance({
      instance_type: "1H100.80S.32V",
      image: "ubuntu-24.04-cuda-12.8-open-docker",
      hostname: "workshop-gpu",
      location_code: "FIN-01",
      description: "workshop",
      ssh_key_ids: [key],
      startup_script_id: script,
      os_volume: { name: "os", size: 60 },
      existing_volumes: [scratch],
      volumes: [{ name: "extra", size: 10, type: "NVMe" }],
      is_spot: false,
      contract: "PAY_AS_YOU_GO",
      tags: [{ key: "env", value: "test" }],
    });
    await c.call("GET", `/instances/${id}`); // ordered: ip and os_volume_id null
    const inst = await c.waitInstance(id, "running");
    await c.call("GET", "/instances?status=running&tag=env=test");
    await c.call("PUT", "/volumes", { action: "attach", id: sfs, instance_ids: [id] });
    await c.waitVolume(sfs, "exported");
    await c.call("GET", "/volumes");
    await c.call("GET", "/volumes?status=attached");
    const tag = await c.call("POST", `/instances/${id}/tags`, { key: "owner", value: "me" });
    await c.call("POST", `/instances/${id}/tags`, { key: "owner", value: "me" }); // 409
    await c.call("DELETE", `/instances/${id}/tags/${tag.json.id}`);
    await c.call("PUT", "/instances", { action: "shutdown", id });
    await c.waitInstance(id, "offline");
    await c.call("PUT", "/instances", { action: "shutdown", id }); // 204
    await c.call("PUT", "/instances", { action: "start", id: [id, "2b1af58a-7537-4edb-ba81-82cee082c5e9"] }); // 207
    await c.waitInstance(id, "running");
    await c.call("PUT", "/instances", { action: "shutdown", id: "2b1af58a-7537-4edb-ba81-82cee082c5e9" }); // 404
    await c.call("PUT", "/volumes", { action: "resize", id: scratch, size: 30 });
    await c.call("PUT", "/volumes", { action: "rename", id: scratch, name: "scratch-2" });
    await c.call("PUT", "/volumes", { action: "detach", id: sfs, instance_id: id });
    await c.call("PUT", "/instances", { action: "delete", id, volume_ids: [inst.os_volume_id], delete_permanently: true });
    await c.call("GET", `/instances/${id}`); // deleting, then 404
    await new Promise((r) => setTimeout(r, 60));
    await c.call("GET", `/instances/${id}`);
    await c.call("GET", `/volumes/${inst.os_volume_id}`); // permanently deleted shape
    await c.call("PUT", "/volumes", { action: "delete", id: [scratch], is_permanent: false });
    await c.call("GET", "/volumes/trash");
    await c.call("GET", `/volumes/${scratch}`);
    await c.call("PUT", "/volumes", { action: "restore", id: scratch });
    await c.call("PUT", "/volumes", { action: "clone", id: scratch, name: "copy" });
    await c.call("DELETE", `/volumes/${scratch}`, { is_permanent: true });
    await c.call("DELETE", `/volumes/${scratch}`, { is_permanent: true }); // 204
    await c.call("DELETE", `/volumes/${sfs}`, { is_permanent: false });
    await c.call("DELETE", "/ssh-keys", { keys: [key] });
    await c.call("DELETE", `/scripts/${script}`);
    await c.call("POST", "/instances", { instance_type: "CPU.4V.16G", image: "ubuntu-24.04", hostname: "x", location_code: "FIN-01" });
    await c.call("GET", "/instances");
    await c.call("PUT", "/instances", { action: "delete", id: (await c.call("GET", "/instances")).json.map((i: { id: string }) => i.id), volume_ids: [] });
    sim.setFaults({ type: "no_capacity" });
    await c.call("POST", "/instances", { instance_type: "CPU.4V.16G", image: "ubuntu-24.04", hostname: "x", location_code: "FIN-01" }); // 503

    const exchanges = sim.exchanges();
    const statuses = new Set(exchanges.map((x) => x.status));
    for (const s of [200, 201, 202, 204, 207, 401, 404, 409, 503]) expect(statuses, `status ${s} exercised`).toContain(s);
    expect(validateExchanges(exchanges)).toEqual([]);
    // The tour covers every operation the simulator implements.
    const covered = new Set(exchanges.map((x) => `${x.method} ${findOperation(x.method, x.url)?.template}`));
    expect(covered.size).toBeGreaterThanOrEqual(30);
  });

  it("create responses in every id format conform", async () => {
    for (const createIdFormat of ["json-string", "object"] as const) {
      const { sim: s2, c: c2 } = await startTestSim({ createIdFormat });
      try {
        const r = await c2.call("POST", "/ssh-keys", { name: "k", key: PUBLIC_KEY });
        expect(r.headers.get("content-type")).toMatch(/application\/json/);
        expect(createIdFormat === "object" ? r.json.id : r.json).toMatch(/^[0-9a-f-]{36}$/);
        await c2.createVolume();
        expect(validateExchanges(s2.exchanges())).toEqual([]);
      } finally {
        await s2.close();
      }
    }
  });
});
