// SshKey and StartupScript lifecycles through the real client against the simulator.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { sshKeyProvider, startupScriptProvider, type SshKeyInputs, type StartupScriptInputs } from "../../infra/providers";
import { PROVIDER_VERSION } from "../../infra/providers/version";
import { must, startHarness, PUBLIC_KEY, type Harness } from "./harness";

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});
// Every request the client sent must conform to Verda's OpenAPI document (and so must the answers).
afterEach(() => {
  const problems = h.takeContractProblems();
  expect(problems.requests).toEqual([]);
  expect(problems.responses).toEqual([]);
});

describe("SshKey lifecycle", () => {
  it("check, diff, create, read, update, delete, delete again", async () => {
    const news: SshKeyInputs = { name: "workshop", publicKey: `${PUBLIC_KEY}\n` };
    const checked = await sshKeyProvider.check!({} as SshKeyInputs, news);
    expect(checked.failures).toEqual([]);
    expect(checked.inputs!.publicKey).toBe(PUBLIC_KEY);

    const created = must(await sshKeyProvider.create(checked.inputs!));
    expect(created.outs).toMatchObject({ keyId: created.id, name: "workshop" });
    expect(h.sim.state().ssh_keys.map((k) => k.id)).toContain(created.id);

    const read = await sshKeyProvider.read!(created.id, created.outs);
    expect(read).toMatchObject({ id: created.id, inputs: { name: "workshop", publicKey: PUBLIC_KEY } });

    expect(await sshKeyProvider.diff!(created.id, created.outs, checked.inputs!)).toEqual({ changes: false, replaces: [] });
    expect(await sshKeyProvider.diff!(created.id, created.outs, { ...checked.inputs!, name: "renamed" })).toEqual({ changes: true, replaces: ["name"] });
    const updated = await sshKeyProvider.update!(created.id, created.outs, checked.inputs!);
    expect(updated.outs).toMatchObject({ keyId: created.id });

    await sshKeyProvider.delete!(created.id, created.outs);
    expect(h.sim.state().ssh_keys.map((k) => k.id)).not.toContain(created.id);
    await sshKeyProvider.delete!(created.id, created.outs); // already gone: no error
    expect((await sshKeyProvider.read!(created.id, created.outs)).id).toBe("");
  });
});

describe("StartupScript lifecycle", () => {
  it("check, diff, create, read, update, delete, and notices an out-of-band deletion", async () => {
    const news: StartupScriptInputs = { name: "bootstrap", script: "#!/bin/bash\necho hello > /root/hello\n" };
    const checked = await startupScriptProvider.check!({} as StartupScriptInputs, news);
    expect(checked.failures).toEqual([]);
    const created = must(await startupScriptProvider.create(checked.inputs!));
    expect(created.outs.scriptId).toBe(created.id);

    const read = await startupScriptProvider.read!(created.id, created.outs);
    expect(read.inputs).toEqual({ ...news, providerVersion: PROVIDER_VERSION });
    expect(await startupScriptProvider.diff!(created.id, created.outs, { ...news, script: "#!/bin/bash\n" })).toEqual({ changes: true, replaces: ["script"] });
    await startupScriptProvider.update!(created.id, created.outs, news);

    await h.direct.deleteStartupScript(created.id); // someone deletes it in the console
    expect((await startupScriptProvider.read!(created.id, created.outs)).id).toBe("");
    await startupScriptProvider.delete!(created.id, created.outs); // idempotent
  });
});

describe("authentication against the simulator", () => {
  it("falls back to a form-encoded token request when the server rejects JSON", async () => {
    h.sim.setFaults({ type: "http", method: "POST", path: "/v1/oauth2/token", content_type: "application/json", status: 400, code: "invalid_request", message: "unsupported grant type" });
    try {
      const { verdaRuntime } = await import("../../infra/providers/runtime");
      verdaRuntime().tokens = {}; // force a fresh login
      const created = must(await sshKeyProvider.create({ name: "form-login", publicKey: PUBLIC_KEY }));
      const logins = h.exchanges.filter((x) => x.path === "/v1/oauth2/token").slice(-2);
      expect(logins.map((x) => [x.requestContentType, x.status])).toEqual([["application/json", 400], ["application/x-www-form-urlencoded", 200]]);
      await sshKeyProvider.delete!(created.id, created.outs);
    } finally {
      h.sim.clearFaults();
    }
  });

  it("refreshes a short-lived token with the refresh_token grant", async () => {
    const before = h.sim.state().tokens;
    const { verdaRuntime } = await import("../../infra/providers/runtime");
    const cache = Object.values(verdaRuntime().tokens ?? {})[0]!;
    cache.held = { ...cache.held!, renewAtMs: 0 }; // as if the token were about to expire
    const created = must(await startupScriptProvider.create({ name: "refresh", script: "#!/bin/bash\n" }));
    expect(h.sim.state().tokens.refreshed).toBe(before.refreshed + 1);
    await startupScriptProvider.delete!(created.id, created.outs);
  });
});

