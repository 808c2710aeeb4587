// Phase `workshop-month` with a month-scoped scratch and the SFS protected (the default): the scratch,
// which holds the users' inputs and outputs for the whole month, is protected with it.
import { beforeAll, describe, expect, it } from "vitest";
import { MONTH_SECRET_KEYS, monthValues } from "../support/fixtures";
import { runProgram, type ProgramRun } from "../support/mock-program";

let run: ProgramRun;
beforeAll(async () => {
  run = await runProgram("workshop-month", { ...monthValues("workshop", false), "comfyume:scratch": { lifetime: "month", sizeGb: 20 } }, MONTH_SECRET_KEYS);
});

describe("month scratch protection", () => {
  it("protects the month scratch together with the SFS", () => {
    expect(run.byName("shared-fs-sfs").opts.protect).toBe(true);
    expect(run.byName("shared-fs-scratch").opts.protect).toBe(true);
  });
});
