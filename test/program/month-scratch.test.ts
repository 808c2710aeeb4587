// Phase `testing-month`, seeding off, scratch kept for the month, SFS not protected by config.
import { beforeAll, describe, expect, it } from "vitest";
import { MONTH_SECRET_KEYS, monthValues } from "../support/fixtures";
import { isVerda, promiseOf, runProgram, type ProgramRun } from "../support/mock-program";

let run: ProgramRun;
beforeAll(async () => {
  run = await runProgram(
    "testing-month",
    { ...monthValues("testing", false), "comfyume:sfs": { sizeGb: 50, protect: false, location: "FIN-03" }, "comfyume:scratch": { lifetime: "month", sizeGb: 20 } },
    MONTH_SECRET_KEYS,
  );
});

describe("month without loader, with a month scratch", () => {
  it("creates only the SFS and the scratch volume", () => {
    const custom = run.resources.filter((r) => isVerda(r, "Volume") || isVerda(r, "Instance") || r.type.includes("dynamic/remote:") || r.type.startsWith("command:"));
    expect(custom.map((r) => r.name)).toEqual(["shared-fs-sfs", "shared-fs-scratch"]);
    expect(run.byName("shared-fs-sfs").opts.protect).toBe(false);
    // The month scratch follows the SFS's switch (both hold the month's data; see month-protected.test.ts).
    expect(run.byName("shared-fs-scratch").opts.protect).toBe(false);
    expect(run.byName("shared-fs-sfs").inputs).toMatchObject({ size: 50, locationCode: "FIN-03", name: "comfyume-testing-sfs" });
    expect(run.byName("shared-fs-scratch").inputs).toMatchObject({ type: "NVMe", size: 20, locationCode: "FIN-03", name: "comfyume-testing-scratch" });
    expect(run.byName("shared-fs-scratch").parentName).toBe("shared-fs");
  });

  it("exports the scratch id for the day layer and reports no loader", async () => {
    expect(await promiseOf(run.outputs.scratchVolumeId)).toBe("vol-shared-fs-scratch");
    expect(await promiseOf(run.outputs.scratchLifetime)).toBe("month");
    expect(await promiseOf(run.outputs.loaderRunning)).toBe(false);
    expect(await promiseOf(run.outputs.seeded)).toBe(false);
  });
});
