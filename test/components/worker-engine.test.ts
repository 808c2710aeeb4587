// The day worker under the real engine on the local cloud (Verda simulator, SSH hosts, S3): the real
// program and CLI, idle and month up as in the rehearsal, then a day stack with a day-scoped scratch.
//  - A day stack brought up by the code before GpuWorker was split into its parts shows no
//    replacement, creation or deletion of what it has after the split (aliases keep the URNs).
//  - A capacity fallback is kept: the first `up` gets the fallback type, capacity for the first
//    choice comes back, and the next `up` changes nothing (same instance id).
//  - An instance evicted before the nightly destroy: the destroy stops before any backup or delete,
//    names the instance, the scratch that still holds the files and the rescue; the scratch stays.
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLocalCloud, type LocalCloud } from "../../sim/local-cloud";
import { pulumiRunner, REPO_ROOT, type PulumiRunner } from "../../sim/rehearsal/pulumi-runner";
import { dayStack, idleStack, monthStack, stackFile } from "../../sim/rehearsal/stack-files";
import { pulumiToolchainReady } from "../support/pulumi-cli";
import { useTsxMain } from "../support/tsx-entry";

const MONTH = "testing-month";
const DAY = "workshop-day";
const FIRST_CHOICE = "1H100.80S.32V";
const FALLBACK = "1A100.22V";

interface Step {
  op: string;
  urn: string;
  diffReasons?: string[];
}

const nameOf = (urn: string) => urn.split("::").pop() as string;
/** The resource's own type, the last of the URN's type chain. */
const typeOf = (urn: string) => (urn.split("::")[2] ?? "").split("$").pop() as string;
/** Steps every run has: the StackReferences are read again. */
const isRoutine = (s: Step) => s.op === "same" || (s.op === "read" && typeOf(s.urn) === "pulumi:pulumi:StackReference");

/**
 * A copy of the program as it was before the split (components/gpu-worker.ts from the fixture, the
 * rest from the repository): copied, not linked, because Node resolves links to the repository.
 */
function preSplitProgram(dir: string): string {
  const root = path.join(dir, "pre-split");
  // (policy/: the day's pre-flight, infra/phases/preflight.ts, runs the backup-hook rule from it)
  for (const entry of ["index.ts", "infra", "components", "policy", "scripts", "package.json", "tsconfig.json"]) {
    fs.cpSync(path.join(REPO_ROOT, entry), path.join(root, entry), { recursive: true });
  }
  fs.symlinkSync(path.join(REPO_ROOT, "node_modules"), path.join(root, "node_modules"));
  // The split-out worker-*.ts files stay: the old gpu-worker.ts does not use them, but other components
  // (the app host's backup hook) import helpers from them.
  fs.copyFileSync(path.join(__dirname, "fixtures/gpu-worker.pre-split.ts.txt"), path.join(root, "components/gpu-worker.ts"));
  return path.join(root, "index.ts");
}

describe.runIf(pulumiToolchainReady())("the day worker under the real engine", () => {
  let cloud: LocalCloud;
  let pulumi: PulumiRunner;
  let projectDir: string;
  let oldMain: string;

  /** Points the throwaway project at a program: the repository's start file, or a copy's index.ts (through tsx). */
  const useProgram = (main: string) => {
    const file = path.join(projectDir, "Pulumi.yaml");
    if (main.endsWith(".ts")) return useTsxMain(file, main);
    fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace(/^main: .+$/m, `main: ${main}`));
  };
  const writeStack = (stack: string, config: object) => {
    const file = path.join(projectDir, "stacks", `Pulumi.${stack}.yaml`);
    fs.writeFileSync(file, stackFile(`test: ${stack}`, config, fs.existsSync(file) ? fs.readFileSync(file, "utf8") : ""));
  };
  const initStack = async (stack: string, config: object, secrets: Record<string, string>) => {
    await pulumi.run(`init ${stack}`, ["stack", "init", stack]);
    writeStack(stack, config);
    for (const [key, value] of Object.entries(secrets)) await pulumi.run(`secret ${key}`, ["config", "set", "--stack", stack, "--secret", key], { stdin: value });
  };
  const dayConfig = (fallbacks: object[] = []) => ({
    ...dayStack(cloud.env, DAY, MONTH),
    "comfyume:gpu": { instanceType: FIRST_CHOICE, image: "ubuntu-24.04-cuda-12.8-open-docker" },
    "comfyume:scratch": { lifetime: "day", sizeGb: 10 },
    "comfyume:capacity": { fallbacks },
    // A host that is gone is given up on after a few dials (the default keeps dialing for minutes).
    "comfyume:ssh": { port: Number(cloud.env.COMFYUME_SIM_SSH_PORT), perDialTimeout: 5, dialErrorLimit: 3 },
  });
  const preview = async (): Promise<{ steps: Step[]; diagnostics: string }> => {
    const out = JSON.parse((await pulumi.run("day preview", ["preview", "--stack", DAY, "--json"])).stdout) as { steps: Step[]; diagnostics?: { message: string }[] };
    return { steps: out.steps, diagnostics: (out.diagnostics ?? []).map((d) => d.message).join("\n") };
  };
  const changed = (steps: Step[]) => steps.filter((s) => !isRoutine(s)).map((s) => `${s.op} ${typeOf(s.urn)} ${nameOf(s.urn)}${s.diffReasons?.length ? ` (${s.diffReasons.join(",")})` : ""}`);
  const liveInstances = () => cloud.verda.state().instances.filter((i) => i.hostname === `comfyume-${DAY}` && i.status !== "discontinued");

  beforeAll(async () => {
    // Its own loopback range: the rehearsal (127.0.0.x) may run in parallel in another vitest worker.
    // Hosts with the tools already on them: the pre-split code installed none (the bootstrap came later),
    // so its stacks ran on hosts an admin had prepared; the current code's bootstrap then takes its fast path.
    cloud = await startLocalCloud({ loopbackNet: "127.95.0", imagePackages: ["jq", "rclone", "nfs-common"] });
    projectDir = cloud.env.COMFYUME_SIM_PROJECT_DIR;
    oldMain = preSplitProgram(cloud.dir);
    pulumi = pulumiRunner(projectDir, { ...cloud.env, COMFYUME_NO_POLICY: "1" }, path.join(cloud.dir, "logs"), () => undefined);
    const env = cloud.env;
    const sshKey = fs.readFileSync(env.COMFYUME_SIM_ADMIN_KEY_FILE, "utf8");
    await initStack("idle", idleStack(env), {
      "comfyume:r2AccessKeyId": env.COMFYUME_SIM_R2_ACCESS_KEY_ID,
      "comfyume:r2SecretAccessKey": env.COMFYUME_SIM_R2_SECRET_ACCESS_KEY,
    });
    await pulumi.run("idle up", ["up", "--stack", "idle", "--yes", "--skip-preview"]);
    // The loader seeds the SFS cache the day restores from; it may stay up for this test.
    await initStack(MONTH, { ...monthStack(env, MONTH, { loader: true, protect: true }), "comfyume:scratch": { lifetime: "day" } }, { "comfyume:sshPrivateKey": sshKey });
    await pulumi.run("month up", ["up", "--stack", MONTH, "--yes", "--skip-preview"]);
    await initStack(DAY, dayConfig(), {
      "comfyume:sshPrivateKey": sshKey,
      "comfyume:redisPassword": env.COMFYUME_SIM_REDIS_PASSWORD,
      "comfyume:tailscaleAuthKey": env.COMFYUME_SIM_TAILSCALE_AUTH_KEY,
    });
  }, 600_000);

  afterAll(async () => {
    await cloud?.close();
  });

  it("keeps every resource of a day stack brought up before the split (no replace, create or delete)", async () => {
    useProgram(oldMain);
    await pulumi.run("day up (pre-split code)", ["up", "--stack", DAY, "--yes", "--skip-preview"]);
    const before = liveInstances().map((i) => i.id);
    useProgram(path.join(REPO_ROOT, "infra/start/program.cjs"));
    const { steps } = await preview();
    // Only the new part components appear; every resource keeps its URN (through its alias) and state.
    // (and the InstanceGuard, new since the split).
    // The hooks' delete commands gained flags since the fixture was written (--fresh-volume, the shrink
    // tolerance): recorded in place (an update that runs nothing), never a replace.
    const hookUpdates = ["worker-backup-before-delete", "worker-backup-mello-before-delete"].map((n) => `update pulumi-nodejs:dynamic/remote:Command ${n}`);
    // The toolchain bootstrap came later too: its two commands are created (they run on the live hosts, where
    // everything is present; --pre-mount runs inside mount-sfs), and the two script uploads gain its files (an
    // update in place).
    const toolchainCreates = ["worker-toolchain", "worker-mello-toolchain"].map((n) => `create pulumi-nodejs:dynamic/remote:Command ${n}`);
    const isUploadUpdate = (s: string) => /^update pulumi-nodejs:dynamic\/remote:Files worker-(mello-)?scripts-files\b/.test(s);
    expect(changed(steps)).toEqual(expect.arrayContaining(toolchainCreates));
    // Issue 14 added the SFS share check (no call: the worker got the SFS at creation) and the SFS identity
    // marker check to mount-sfs (re-run in place: the month's loader wrote the marker).
    const sfsChecks = ["create pulumi-nodejs:dynamic/verda:SfsShare worker-sfs-share", "update pulumi-nodejs:dynamic/remote:Command worker-mount-sfs"];
    expect(changed(steps)).toEqual(expect.arrayContaining(sfsChecks));
    expect(changed(steps).filter((s) => !hookUpdates.includes(s) && !toolchainCreates.includes(s) && !isUploadUpdate(s) && !sfsChecks.includes(s)).sort()).toEqual([
      "create comfyume:verda:WorkerBackupHooks worker",
      "create comfyume:verda:WorkerInstance worker",
      "create comfyume:verda:WorkerRestore worker",
      "create pulumi-nodejs:dynamic/verda:InstanceGuard worker-instance-guard",
      // Issue 13: an unpinned worker's first-boot script (the toolchain installed in the background). The running
      // instance ignores its startup script (startupScriptId in ignoreChanges): no replace.
      "create pulumi-nodejs:dynamic/verda:StartupScript worker-first-boot",
    ]);
    await pulumi.run("day up (split code)", ["up", "--stack", DAY, "--yes", "--skip-preview"]);
    expect(liveInstances().map((i) => i.id)).toEqual(before);
    // The state now records the instance under its new parent, with the id it had.
    const state = JSON.parse((await pulumi.run("day export", ["stack", "export", "--stack", DAY])).stdout) as { deployment: { resources: { urn: string; id?: string }[] } };
    const instance = state.deployment.resources.find((r) => r.urn.endsWith("::worker-instance"));
    expect(instance?.urn).toContain("comfyume:verda:GpuWorker$comfyume:verda:WorkerInstance$pulumi-nodejs:dynamic/verda:Instance::worker-instance");
    expect([instance?.id]).toEqual(before);
    await pulumi.run("day destroy", ["destroy", "--stack", DAY, "--yes", "--skip-preview"]);
    expect(liveInstances()).toEqual([]);
  }, 900_000);

  it("keeps the placement a capacity fallback gave: the next up changes nothing once the first choice is back", async () => {
    useProgram(path.join(REPO_ROOT, "infra/start/program.cjs"));
    writeStack(DAY, dayConfig([{ instanceType: FALLBACK }]));
    cloud.verda.setFaults({ type: "no_capacity", instance_type: FIRST_CHOICE });
    await pulumi.run("day up (fallback)", ["up", "--stack", DAY, "--yes", "--skip-preview"]);
    const [first] = liveInstances();
    expect(first?.instance_type).toBe(FALLBACK);

    // Capacity for the first choice comes back; nothing else changed.
    cloud.verda.clearFaults();
    const { steps, diagnostics } = await preview();
    expect(changed(steps)).toEqual([]);
    expect(diagnostics).toContain(`keeps the placement it was deployed with (${FALLBACK} on-demand in FIN-01)`);
    await pulumi.run("day up (capacity back)", ["up", "--stack", DAY, "--yes", "--skip-preview"]);
    expect(liveInstances().map((i) => [i.id, i.instance_type])).toEqual([[first.id, FALLBACK]]);
  }, 900_000);

  it("stops the destroy of a day whose instance was evicted, before the scratch is touched", async () => {
    const [evicted] = liveInstances();
    expect(evicted).toBeDefined();
    const scratch = () => cloud.verda.state().volumes.find((v) => v.name === `comfyume-${DAY}-scratch` && !("deleted_at" in v));
    const scratchBefore = scratch();
    expect(scratchBefore).toBeDefined();
    cloud.verda.evictInstance(evicted.id);

    const destroy = await pulumi.run("day destroy (evicted)", ["destroy", "--stack", DAY, "--yes", "--skip-preview"], { allowFailure: true });
    const output = fs.readFileSync(destroy.logFile, "utf8");
    expect(destroy.code).not.toBe(0);
    expect(output).toContain(`the worker instance ${evicted.id} is discontinued at Verda`);
    expect(output).toContain(`NOTHING was deleted: the scratch volume ${scratchBefore!.id} still holds the users' inputs and outputs`);
    expect(output).toContain(`npm run rescue -- --stack ${DAY}`);
    // The scratch is where it was, and the state still holds the hooks, the instance and the scratch.
    expect(scratch()?.id).toBe(scratchBefore!.id);
    const state = JSON.parse((await pulumi.run("day export", ["stack", "export", "--stack", DAY])).stdout) as { deployment: { resources: { urn: string }[] } };
    const names = state.deployment.resources.map((r) => nameOf(r.urn));
    expect(names).toEqual(expect.arrayContaining(["worker-backup-before-delete", "worker-backup-mello-before-delete", "worker-instance", "worker-scratch", "worker-instance-guard"]));
  }, 900_000);
});
