// Adopting an existing SFS (issue 14 item 1) with the real program under the real engine against the
// simulator: an SFS made out of band (as production's was, in the console) is adopted by id; every
// difference between the config and the live SFS is reported, each naming the setting and its fix,
// before anything changes; once adopted, a config edit never plans a replace (the difference is
// reported instead) and nothing at Verda changes; `pulumi destroy` leaves it (protected, then retained).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSimulator, type RunningSimulator } from "../../sim/simulator";
import { VerdaClient } from "../../infra/verda/client";
import { generateKeyPair } from "../support/ssh-host";
import { pulumiSandbox, pulumiToolchainReady, repoRoot, type PulumiRun, type PulumiSandbox } from "../support/pulumi-cli";

const MONTH = "workshop-month";
const PROD_SFS = "PROD_SFS-Model-Vault-22-Jan-01-4xR2NHBi";

interface Step {
  op: string;
  urn: string;
}

function programFixture(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "comfyume-adopt-"));
  for (const entry of ["index.ts", "infra", "components", "scripts", "Pulumi.yaml", "package.json", "tsconfig.json"]) {
    fs.symlinkSync(path.join(repoRoot, entry), path.join(dir, entry));
  }
  fs.mkdirSync(path.join(dir, "stacks"));
  return dir;
}

describe.runIf(pulumiToolchainReady())("adopting the production SFS (real engine, simulator)", () => {
  let sim: RunningSimulator;
  let verda: VerdaClient;
  let fixture: string;
  let sandbox: PulumiSandbox;
  let env: NodeJS.ProcessEnv;
  let sfsId: string;

  const pulumi = (args: string[]): Promise<PulumiRun> => sandbox.runAsync(args, { env, timeoutMs: 90_000 });
  const ok = async (...args: string[]) => {
    const result = await pulumi(args);
    if (result.status !== 0) throw new Error(`pulumi ${args.join(" ")} failed:\n${result.stdout.slice(-4000)}\n${result.stderr.slice(-4000)}`);
    return result;
  };
  const stackFile = (stack: string) => path.join(sandbox.dir, "stacks", `Pulumi.${stack}.yaml`);
  const monthConfig = (sfs: string[]) =>
    fs.writeFileSync(
      stackFile(MONTH),
      ["config:", `  comfyume:phase: ${MONTH}`, "  comfyume:verda:", "    location: FIN-01", "  comfyume:sfs:", ...sfs.map((l) => `    ${l}`), ""].join("\n"),
    );
  const volumeMutations = () =>
    sim.exchanges().filter((e) => e.method !== "GET" && /\/volumes/.test(e.url));

  beforeAll(async () => {
    sim = await startSimulator({ port: 0, host: "127.0.103.1" });
    verda = new VerdaClient({ clientId: sim.clientId, clientSecret: sim.clientSecret, baseUrl: sim.baseUrl });
    // Out of band, as in the console: production's SFS with months of models.
    sfsId = await verda.createVolume({ type: "NVMe_Shared", location_code: "FIN-01", size: 220, name: PROD_SFS });
    fixture = programFixture();
    sandbox = pulumiSandbox(fixture);
    env = {
      COMFYUME_NO_POLICY: "1",
      VERDA_BASE_URL: sim.baseUrl,
      VERDA_CLIENT_ID: sim.clientId,
      VERDA_CLIENT_SECRET: sim.clientSecret,
      VERDA_POLL_INTERVAL_MS: "50",
    };
    await ok("stack", "init", "idle");
    fs.appendFileSync(
      stackFile("idle"),
      [
        "config:",
        "  comfyume:phase: idle",
        "  comfyume:mello:",
        "    mode: external",
        "    address: 127.0.103.2",
        "    sshPort: 2222",
        "    sshUser: dev",
        `    hostKey: ${generateKeyPair().publicKey}`,
        "  comfyume:backups:",
        "    mode: existing",
        "    endpoint: http://127.0.103.3:9000",
        "  comfyume:sshKeys:",
        `    admin: ${generateKeyPair().publicKey}`,
        `    mello: ${generateKeyPair().publicKey}`,
        "",
      ].join("\n"),
    );
    await ok("config", "set-all", "--stack", "idle", "--secret", `comfyume:r2AccessKeyId=${"0a".repeat(16)}`, "--secret", `comfyume:r2SecretAccessKey=${"cd".repeat(32)}`);
    await ok("up", "--yes", "--skip-preview", "--stack", "idle");
    await ok("stack", "init", MONTH);
  }, 300_000);

  afterAll(async () => {
    sandbox?.cleanup();
    if (fixture) fs.rmSync(fixture, { recursive: true, force: true });
    await sim?.close();
  });

  it("reports every difference between the config and the live SFS, naming the setting and the fix, before anything changes", async () => {
    monthConfig([`adopt: { id: ${sfsId} }`, "sizeGb: 200", "location: FIN-02"]);
    const before = sim.exchanges().length;
    const preview = await pulumi(["preview", "--stack", MONTH]);
    const text = preview.stdout + preview.stderr;
    expect(preview.status, text).not.toBe(0);
    // Each difference, with the live value and the exact command that makes the config match.
    expect(text).toContain("comfyume:sfs.name");
    expect(text).toContain(`scripts/pulumi config set --path 'comfyume:sfs.name' '${PROD_SFS}' --stack ${MONTH}`);
    expect(text).toContain("comfyume:sfs.sizeGb");
    expect(text).toContain(`scripts/pulumi config set --path 'comfyume:sfs.sizeGb' '220' --stack ${MONTH}`);
    expect(text).toContain("comfyume:sfs.location");
    expect(text).toContain(`scripts/pulumi config set --path 'comfyume:sfs.location' 'FIN-01' --stack ${MONTH}`);
    // Nothing but reads (and logins) reached Verda.
    expect(sim.exchanges().slice(before).filter((e) => e.method !== "GET" && !e.url.startsWith("/v1/oauth2/"))).toEqual([]);
    expect((await verda.listVolumes()).map((v) => v.id)).toEqual([sfsId]);
  }, 300_000);

  it("adopts it as is: the stack records the existing SFS, creates nothing, changes nothing", async () => {
    monthConfig([`adopt: { id: ${sfsId} }`, `name: ${PROD_SFS}`, "sizeGb: 220"]);
    const before = volumeMutations().length;
    await ok("up", "--yes", "--stack", MONTH);
    const outputs = JSON.parse((await ok("stack", "output", "--json", "--stack", MONTH)).stdout);
    expect(outputs.sfsId).toBe(sfsId);
    expect(outputs.sfsMountTarget).toMatch(/^nfs\.fin-01\.datacrunch\.io:\//);
    expect(volumeMutations().length).toBe(before);
    expect((await verda.listVolumes()).map((v) => [v.id, v.name, v.size])).toEqual([[sfsId, PROD_SFS, 220]]);
  }, 300_000);

  it("a config edit on the adopted SFS never plans a replace: the difference is reported, nothing at Verda changes", async () => {
    monthConfig([`adopt: { id: ${sfsId} }`, "name: comfyume-workshop-sfs", "sizeGb: 300", "location: FIN-02"]);
    const preview = await ok("preview", "--json", "--diff", "--stack", MONTH);
    const steps: Step[] = JSON.parse(preview.stdout).steps;
    const sfsSteps = steps.filter((s) => s.urn.endsWith("::shared-fs-sfs"));
    expect(sfsSteps.map((s) => s.op)).not.toEqual(expect.arrayContaining(["replace"]));
    for (const op of ["replace", "create-replacement", "delete-replaced", "delete", "create", "update"]) {
      expect(sfsSteps.map((s) => s.op), op).not.toContain(op);
    }
    const text = (await ok("preview", "--stack", MONTH)).stdout;
    expect(text).toMatch(/adopted.*comfyume:sfs\.location/s);
    expect(text).toContain("comfyume:sfs.sizeGb");
    expect(text).toContain("comfyume:sfs.name");
    const before = volumeMutations().length;
    await ok("up", "--yes", "--stack", MONTH);
    expect(volumeMutations().length).toBe(before);
    expect((await verda.listVolumes()).map((v) => [v.id, v.name, v.size, v.location])).toEqual([[sfsId, PROD_SFS, 220, "FIN-01"]]);
  }, 400_000);

  it("survives pulumi destroy: protected first, and once unprotected it is retained (left at Verda, never deleted)", async () => {
    const refused = await pulumi(["destroy", "--yes", "--stack", MONTH]);
    expect(refused.status).not.toBe(0);
    expect(refused.stdout + refused.stderr).toMatch(/protected/);
    expect((await verda.listVolumes()).map((v) => v.id)).toEqual([sfsId]);

    await ok("state", "unprotect", "--all", "--yes", "--stack", MONTH);
    const before = volumeMutations().length;
    await ok("destroy", "--yes", "--stack", MONTH);
    expect(volumeMutations().length).toBe(before);
    const volume = await verda.getVolume(sfsId);
    expect(volume?.name).toBe(PROD_SFS);
    expect(String(volume?.status)).not.toBe("deleted");
    expect(volume?.deleted_at ?? undefined).toBeUndefined();
  }, 400_000);
});
