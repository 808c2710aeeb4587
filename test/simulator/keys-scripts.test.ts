import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningSimulator } from "../../sim/simulator";
import { Caller, expectResponsesConform, PUBLIC_KEY, startTestSim } from "./helpers";

describe("simulator: SSH keys and startup scripts", () => {
  let sim: RunningSimulator;
  let c: Caller;
  beforeAll(async () => ({ sim, c } = await startTestSim()));
  afterAll(async () => {
    expectResponsesConform(sim);
    await sim.close();
  });

  it("adds a key (201 bare id), lists it, GET by id is a one-element array, deletes (200)", async () => {
    const r = await c.call("POST", "/ssh-keys", { name: "laptop", key: PUBLIC_KEY });
    expect(r.status).toBe(201);
    const id = r.text;
    const one = await c.call("GET", `/ssh-keys/${id}`);
    expect(one.json).toHaveLength(1);
    expect(one.json[0]).toMatchObject({ id, name: "laptop", key: PUBLIC_KEY, created_by_user_id: null });
    expect(one.json[0].fingerprint).toMatch(/^([0-9a-f]{2}:){15}[0-9a-f]{2}$/);
    expect((await c.call("GET", "/sshkeys")).json.map((k: { id: string }) => k.id)).toEqual([id]);
    expect((await c.call("DELETE", `/ssh-keys/${id}`)).status).toBe(200);
    expect((await c.call("GET", `/ssh-keys/${id}`)).status).toBe(404);
    expect((await c.call("POST", "/ssh-keys", { name: "x" })).status).toBe(400);
  });

  it("deletes several keys at once and gives a null fingerprint for junk keys", async () => {
    const a = (await c.call("POST", "/ssh-keys", { name: "a", key: "not a key" })).text;
    const b = (await c.call("POST", "/ssh-keys", { name: "b", key: PUBLIC_KEY })).text;
    expect((await c.call("GET", `/ssh-keys/${a}`)).json[0].fingerprint).toBeNull();
    expect((await c.call("DELETE", "/ssh-keys", { keys: [a, b] })).status).toBe(200);
    expect((await c.call("GET", "/ssh-keys")).json).toEqual([]);
  });

  it("scripts: 201 bare id, newest first, partial name filter, paging headers, one-element GET", async () => {
    const ids: string[] = [];
    for (const name of ["setup-gpu", "setup-cpu", "other"]) {
      const r = await c.call("POST", "/scripts", { name, script: "#!/bin/bash\necho hi\n" });
      expect(r.status).toBe(201);
      ids.push(r.text);
    }
    expect((await c.call("GET", "/scripts")).json.map((s: { id: string }) => s.id)).toEqual([...ids].reverse());
    expect((await c.call("GET", "/scripts?orderDirection=asc")).json.map((s: { id: string }) => s.id)).toEqual(ids);
    expect((await c.call("GET", "/scripts?name=SETUP")).json).toHaveLength(2);
    const page = await c.call("GET", "/scripts?page=2&pageSize=2");
    expect(page.json.map((s: { id: string }) => s.id)).toEqual([ids[0]]);
    expect([page.headers.get("x-page"), page.headers.get("x-page-size"), page.headers.get("x-total-count")]).toEqual(["2", "2", "3"]);
    const one = await c.call("GET", `/scripts/${ids[0]}`);
    expect(one.json).toEqual([expect.objectContaining({ id: ids[0], name: "setup-gpu", script: "#!/bin/bash\necho hi\n" })]);
    expect((await c.call("DELETE", "/scripts", { scripts: ids.slice(1) })).status).toBe(200);
    expect((await c.call("DELETE", `/scripts/${ids[0]}`)).status).toBe(200);
    expect((await c.call("GET", "/scripts")).json).toEqual([]);
  });

  it("enforces the 100-script quota with 400", async () => {
    for (let i = 0; i < 100; i++) expect((await c.call("POST", "/scripts", { name: `s${i}`, script: "true" })).status).toBe(201);
    const over = await c.call("POST", "/scripts", { name: "one-too-many", script: "true" });
    expect(over.status).toBe(400);
    expect(over.json.message).toMatch(/quota/);
  });

  it("a deploy can reference a startup script and keys", async () => {
    sim.reset();
    const key = (await c.call("POST", "/ssh-keys", { name: "k", key: PUBLIC_KEY })).text;
    const script = (await c.call("POST", "/scripts", { name: "boot", script: "echo boot" })).text;
    const i = await c.runningInstance({ ssh_key_ids: key, startup_script_id: script });
    expect(i).toMatchObject({ ssh_key_ids: [key], startup_script_id: script });
    const bad = await c.call("POST", "/instances", { instance_type: "CPU.4V.16G", image: "ubuntu-24.04", hostname: "x", location_code: "FIN-01", startup_script_id: "nope" });
    expect(bad.status).toBe(400);
  });
});
