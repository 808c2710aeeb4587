// The Verda providers under the real Pulumi engine (CLI, language host, dynamic-provider host)
// against the in-process simulator: preview with unknowns, up, in-place update, refresh, destroy.
// Credentials come from stack config (client secret as a Pulumi secret) through configure().
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSimulator, type RunningSimulator } from "../../sim/simulator";
import { pulumiSandbox, pulumiToolchainReady, repoRoot, type PulumiSandbox } from "../support/pulumi-cli";

const ready = pulumiToolchainReady();

describe.runIf(ready)("Verda providers under the real engine", () => {
  let sim: RunningSimulator;
  let sandbox: PulumiSandbox;
  const env: NodeJS.ProcessEnv = {};
  // Asynchronous on purpose: the simulator lives in this process and must keep serving while the
  // CLI runs (the sandbox's synchronous runner would block it).
  const ok = async (args: string[], timeoutMs = 180_000) => {
    const r = await sandbox.runAsync(args, { env, timeoutMs });
    if (r.status !== 0) throw new Error(`pulumi ${args.join(" ")} failed (exit ${r.status})\n${r.stdout}\n${r.stderr}`);
    return r;
  };

  beforeAll(async () => {
    sim = await startSimulator({ timing: { orderedMs: 50, provisioningMs: 100, instanceDeleteMs: 50, volumeCreateMs: 30, volumeAttachMs: 30 } });
    sandbox = pulumiSandbox(path.join(__dirname, "fixtures/engine"));
    for (const key of Object.keys(sandbox.env)) if (key.startsWith("VERDA_")) env[key] = undefined;
    Object.assign(env, { COMFYUME_REPO: repoRoot, VERDA_POLL_INTERVAL_MS: "50", VERDA_RETRY_BASE_MS: "50" });
    await ok(["stack", "init", "dev"]);
    await ok(["config", "set", "verda:baseUrl", sim.baseUrl]);
    await ok(["config", "set", "verda:clientId", sim.clientId]);
    await ok(["config", "set", "--secret", "verda:clientSecret", sim.clientSecret]);
  }, 120_000);
  afterAll(async () => {
    sandbox?.cleanup();
    await sim?.close();
  });

  it("previews, creates, updates in place, refreshes and destroys the workshop layout", async () => {
    const preview = JSON.parse((await ok(["preview", "--json"])).stdout);
    expect(preview.changeSummary).toMatchObject({ create: 6 }); // stack + 5 resources
    expect(sim.state().instances).toHaveLength(0); // preview made no mutating call

    await ok(["up", "--yes", "--skip-preview"]);
    const outputs = JSON.parse((await ok(["stack", "output", "--json"])).stdout);
    expect(outputs.ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(outputs.sfsStatus).toBe("exported");
    expect(outputs.mountCommand).toContain("mount");
    expect(sim.state().instances.map((i) => i.status)).toEqual(["running"]);

    const exported = (await ok(["stack", "export"])).stdout;
    expect(exported).not.toContain(sim.clientSecret);
    const types = JSON.parse(exported).deployment.resources.map((r: { type: string }) => r.type);
    expect(types).toEqual(expect.arrayContaining(["pulumi-nodejs:dynamic/verda:Instance", "pulumi-nodejs:dynamic/verda:Volume", "pulumi-nodejs:dynamic/verda:SshKey", "pulumi-nodejs:dynamic/verda:StartupScript"]));

    await ok(["config", "set", "sfsSize", "150"]);
    await ok(["config", "set", "phase", "workshop"]);
    const change = JSON.parse((await ok(["preview", "--json"])).stdout);
    const ops = change.steps.map((s: { op: string; urn: string }) => `${s.op} ${s.urn.split("::").pop()}`);
    expect(ops).toEqual(expect.arrayContaining(["update gpu", "update sfs"]));
    expect(ops.filter((o: string) => o.startsWith("replace") || o.startsWith("create"))).toEqual([]);
    await ok(["up", "--yes", "--skip-preview"]);
    const sfs = sim.state().volumes.find((v) => v.name === "engine-sfs");
    expect(sfs?.size).toBe(150);

    await ok(["refresh", "--yes", "--skip-preview", "--expect-no-changes"]);

    // A description edit is recorded (update, never a replace of the running worker) and the warning is shown.
    const instanceId = sim.state().instances[0].id;
    await ok(["config", "set", "description", "second day"]);
    const edit = await ok(["preview", "--diff"]);
    expect(edit.stdout).toContain("~ pulumi-nodejs:dynamic/verda:Instance: (update)");
    expect(edit.stdout).toContain("+ description    : \"second day\"");
    expect(edit.stdout).not.toMatch(/replace/);
    // The dynamic-provider host has no pulumi.log: its stderr is how the warning reaches the user.
    expect(edit.stderr).toContain("warning: instance engine-gpu: description changed");
    expect(edit.stderr).toContain("takes effect on the next instance");
    await ok(["up", "--yes", "--skip-preview"]);
    expect(sim.state().instances.map((i) => [i.id, i.status])).toEqual([[instanceId, "running"]]);

    const osVolumeId = JSON.parse((await ok(["stack", "output", "osVolumeId", "--json"])).stdout);
    await ok(["destroy", "--yes", "--skip-preview"]);
    const state = sim.state();
    expect(state.instances).toHaveLength(0);
    expect(state.ssh_keys).toHaveLength(0);
    expect(state.scripts).toHaveLength(0);
    for (const v of state.volumes) expect({ name: v.name, status: v.status }).toEqual({ name: v.name, status: "deleted" });
    expect(state.volumes.some((v) => v.id === osVolumeId)).toBe(true);
  }, 600_000);
});
