// The day's restore and the workshop's own flat buckets (issue 14, item 4): with `comfyume:seed.layout`
// flat (and `seed.workerImageName`), restore-instance.sh gets --layout flat and the image name, and the
// instance gets seed-flat.sh, which its R2 fallback runs. The manifest path stays exactly as it was.
import { beforeAll, describe, expect, it } from "vitest";
import { DAY_SECRET_KEYS, dayValues } from "../support/fixtures";
import { runProgram, type ProgramRun } from "../support/mock-program";

let flat: ProgramRun;
let manifest: ProgramRun;
beforeAll(async () => {
  flat = await runProgram("workshop-day", { ...dayValues("workshop"), "comfyume:seed": { layout: "flat", workerImageName: "comfyui-worker" } }, DAY_SECRET_KEYS);
  manifest = await runProgram("workshop-day", dayValues("workshop"), DAY_SECRET_KEYS);
});

const restoreCommand = (run: ProgramRun) => String(run.byName("worker-restore").inputs.create);
const hostScripts = (run: ProgramRun) => Object.keys(run.byName("worker-scripts-files").inputs.files as object).filter((p) => p.includes("/host/"));

describe("seed.layout on a day stack", () => {
  it("flat: the restore reads the flat buckets (layout, image name, worker bucket) and the instance gets seed-flat.sh", () => {
    const create = restoreCommand(flat);
    expect(create).toContain("--layout 'flat' --worker-image-name 'comfyui-worker'");
    expect(create).toContain("--cache-bucket 'comfyume-cache-backups'");
    expect(create).toContain("--worker-bucket 'comfyume-worker-container-backups'");
    expect(hostScripts(flat)).toContain("/opt/comfyume/host/seed-flat.sh");
  });

  it("manifest (the default): the restore command and the instance's scripts are as before", () => {
    const create = restoreCommand(manifest);
    expect(create).not.toContain("--layout");
    expect(create).not.toContain("--worker-image-name");
    expect(create).not.toContain("--worker-bucket");
    expect(hostScripts(manifest)).not.toContain("/opt/comfyume/host/seed-flat.sh");
  });
});
