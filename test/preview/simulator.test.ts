// `npm run preview:summary` end to end on a real `pulumi preview --json` against the Verda simulator:
// the real Verda providers in comfyume's components, after a change that replaces the instance and one
// that drops the SFS. Asynchronous runs: the simulator lives in this process and must keep answering.
import { execFile } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSimulator, type RunningSimulator } from "../../sim/simulator";
import { pulumiSandbox, pulumiToolchainReady, repoRoot, type PulumiSandbox } from "../support/pulumi-cli";

const ready = pulumiToolchainReady();

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe.runIf(ready)("preview summary against the Verda simulator", { timeout: 300_000 }, () => {
  let sim: RunningSimulator;
  let sandbox: PulumiSandbox;
  const env: NodeJS.ProcessEnv = {};
  const pulumi = async (args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<Run> => {
    const r = await sandbox.runAsync(args, { env: { ...env, ...extraEnv }, timeoutMs: 240_000 });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const ok = async (args: string[]) => {
    const r = await pulumi(args);
    if (r.code !== 0) throw new Error(`pulumi ${args.join(" ")} failed:\n${r.stdout}\n${r.stderr}`);
    return r;
  };
  /** The summary the way a user gets it: `npm run preview:summary`, which runs the preview itself. */
  const summaryTool = (settings: Record<string, string>) =>
    new Promise<Run>((resolve) => {
      const fixtureEnv = Object.fromEntries(Object.entries(settings).map(([k, v]) => [`PREVIEWSIM_${k}`, v]));
      execFile(
        path.join(repoRoot, "scripts/node-env"),
        ["tsx", path.join(repoRoot, "scripts/preview-summary.ts"), "--stack", "testing-day"],
        { cwd: sandbox.dir, env: { ...sandbox.env, ...env, ...fixtureEnv }, timeout: 240_000, maxBuffer: 64 * 1024 * 1024 },
        (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
      );
    });

  beforeAll(async () => {
    sim = await startSimulator({ timing: { orderedMs: 20, provisioningMs: 40, instanceDeleteMs: 20, volumeCreateMs: 20, volumeAttachMs: 20 } });
    sandbox = pulumiSandbox(path.join(__dirname, "fixtures/verda-sim"));
    for (const key of Object.keys(sandbox.env)) if (key.startsWith("VERDA_")) env[key] = undefined;
    Object.assign(env, { COMFYUME_REPO: repoRoot, VERDA_POLL_INTERVAL_MS: "20", VERDA_RETRY_BASE_MS: "20" });
    await ok(["stack", "init", "testing-day"]);
    await ok(["config", "set", "verda:baseUrl", sim.baseUrl]);
    await ok(["config", "set", "verda:clientId", sim.clientId]);
    await ok(["config", "set", "--secret", "verda:clientSecret", sim.clientSecret]);
    await ok(["up", "--yes", "--skip-preview"]);
  }, 300_000);
  afterAll(async () => {
    sandbox?.cleanup();
    await sim?.close();
  });

  it("shows the instance replacement by component, with no data at risk", async () => {
    const { code, stdout: markdown } = await summaryTool({ instanceType: "1RTX6000ADA.10V" });
    expect(code).toBe(0);
    expect(markdown).not.toContain("[!WARNING]");
    expect(markdown).toContain("**comfyume:verda:GpuWorker `worker`**");
    expect(markdown).toMatch(/\| replace \| `worker-instance` \| `verda:Instance` \| [^|]*`instanceType`/);
    expect(sim.state().instances).toHaveLength(1); // a preview changes nothing
  });

  it("lists the SFS deletion first, under the warning", async () => {
    const { code, stdout: markdown } = await summaryTool({ sfs: "false" });
    expect(code).toBe(1); // the summary is printed, and the engine refused to delete the protected SFS
    const warning = markdown.slice(markdown.indexOf("[!WARNING]"), markdown.indexOf("**Changes:**"));
    expect(warning).toContain("**DELETE** `sfs-volume` (verda:Volume) — shared file system (models, worker image, restore cache), protected");
    expect(markdown).toMatch(/- \*\*error\*\* \(`sfs-volume`\): Preview failed: resource .* cannot be deleted/);
    expect(markdown).toContain("| delete 🔒 | `sfs-volume` | `verda:Volume` |  |");
    expect(markdown.indexOf("sfs-volume")).toBeLessThan(markdown.indexOf("#### Changes by component"));
  });
});
