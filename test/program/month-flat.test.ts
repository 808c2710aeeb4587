// The month's loader and the workshop's own flat buckets (issue 14, item 4): `comfyume:seed.layout`
// (manifest | flat, default manifest) is passed to seed-sfs.sh, which hands a flat layout to seed-flat.sh.
// The manifest path stays exactly as it was (no new argument, no new script on the loader).
import { beforeAll, describe, expect, it } from "vitest";
import { formatIssues, validateConfig } from "../../infra/config";
import { MONTH_SECRET_KEYS, monthValues, raw } from "../support/fixtures";
import { REMOTE_FILES, runProgram, type ProgramRun } from "../support/mock-program";

const flatSeed = { loader: true, layout: "flat", workerImageName: "comfyui-worker", publishManifest: true };

let flat: ProgramRun;
let manifest: ProgramRun;
beforeAll(async () => {
  flat = await runProgram("workshop-month", { ...monthValues("workshop", true), "comfyume:seed": flatSeed }, MONTH_SECRET_KEYS);
  manifest = await runProgram("workshop-month", monthValues("workshop", true), MONTH_SECRET_KEYS);
});

const seedCommand = (run: ProgramRun) => String(run.byName("shared-fs-seed").inputs.create);
const hostScripts = (run: ProgramRun) =>
  Object.keys(run.resources.find((r) => r.type === REMOTE_FILES)!.inputs.files as object).filter((p) => p.includes("/host/"));

describe("seed.layout", () => {
  it("flat: the loader gets seed-flat.sh and seed-sfs.sh runs with --layout flat and the flat options", () => {
    expect(hostScripts(flat)).toContain("/opt/comfyume/host/seed-flat.sh");
    const create = seedCommand(flat);
    expect(create).toContain("bash '/opt/comfyume/host/seed-sfs.sh' --r2-endpoint");
    expect(create).toContain("--layout 'flat'");
    expect(create).toContain("--worker-image-name 'comfyui-worker'");
    expect(create).toContain("--publish-manifest");
    expect(create).toContain("--models-bucket 'comfyume-model-vault-backups'");
  });

  it("manifest (the default): the seed command and the loader's scripts are as before", () => {
    const create = seedCommand(manifest);
    expect(create).not.toContain("--layout");
    expect(create).not.toContain("--worker-image-name");
    expect(hostScripts(manifest)).not.toContain("/opt/comfyume/host/seed-flat.sh");
  });

  it("a wrong layout is refused naming the setting and the fix", () => {
    const r = raw("workshop-month", { ...monthValues(), "comfyume:seed": { loader: true, layout: "flatt" } }, MONTH_SECRET_KEYS);
    const result = validateConfig(r);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const issue = result.issues.find((i) => i.key === "comfyume:seed.layout");
    expect(issue, formatIssues(r.stack, result.issues)).toBeDefined();
    expect(issue!.problem).toMatch(/'manifest'.*'flat'/);
  });
});
