// Cost, sweep and status tooling find the stacks of any environment (prod, staging, ...), not only
// testing and workshop.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collectCostReport, ownedIdsFromStacks, type StackSource } from "../../infra/money";
import { listStacks } from "../../infra/status/stacks";
import { createVolume, deployRunning, simRig, type SimRig } from "./helpers";

describe("an environment named prod", () => {
  let rig: SimRig;
  let source: StackSource;
  let ids: { instance: string; scratch: string; sfs: string };

  beforeAll(async () => {
    rig = await simRig({ host: "127.0.111.1" });
    const sfs = await createVolume(rig.client, { name: "comfyume-prod-sfs", type: "NVMe_Shared", sizeGb: 220 });
    const scratch = await createVolume(rig.client, { name: "comfyume-prod-day-scratch", sizeGb: 50 });
    const instance = await deployRunning(rig.client, { hostname: "comfyume-prod-day", existingVolumes: [scratch.id] });
    ids = { instance: instance.id, scratch: scratch.id, sfs: sfs.id };
    const configs: Record<string, Record<string, unknown>> = {
      "prod-day": { "comfyume:phase": "prod-day", "comfyume:gpu": { instanceType: "1H100.80S.32V" } },
      "prod-month": { "comfyume:phase": "prod-month", "comfyume:sfs": { sizeGb: 440 } },
    };
    const outputs: Record<string, Record<string, unknown>> = {
      "prod-day": { instanceId: ids.instance, scratchVolumeId: ids.scratch },
      "prod-month": { sfsId: ids.sfs },
    };
    source = { config: (s) => configs[s], outputs: (s) => outputs[s] ?? {} };
  });
  afterAll(() => rig.close());

  it("npm run cost reports a prod-day stack with its sibling prod-month", async () => {
    const report = await collectCostReport("prod-day", { source, api: rig.api, client: rig.client });
    expect(report.layer).toBe("day");
    // The instance, its scratch and its OS volume (an id the test does not know). Sorting a list that holds a
    // matcher put the matcher anywhere, so the check failed for one id order in three.
    const billed = report.toDate.lines.map((r) => r.id);
    expect(billed).toHaveLength(3);
    expect(billed).toEqual(expect.arrayContaining([ids.instance, ids.scratch]));
    // The month stack's SFS size (440 GB, not the 220 GB default) reached the forecast: the sibling was found.
    expect(JSON.stringify(report)).toContain("440");
  });

  it("npm run cost reports a prod-month stack named only by its stack name", async () => {
    const bare: StackSource = { config: (s) => (s === "prod-month" ? { "comfyume:sfs": { sizeGb: 440 } } : undefined), outputs: () => ({ sfsId: ids.sfs }) };
    const report = await collectCostReport("prod-month", { source: bare, api: rig.api, client: rig.client });
    expect(report.layer).toBe("month");
    expect(report.toDate.lines.map((r) => r.id)).toEqual([ids.sfs]);
  });

  it("npm run sweep reads the state of every environment's stacks", () => {
    const read: string[] = [];
    const run = (args: string[]) => {
      if (args[1] === "ls") {
        const names = ["idle", "prod-month", "prod-day", "staging-day", "scratchpad", "testing-month"];
        return { status: 0, stdout: JSON.stringify(names.map((name) => ({ name: `organization/comfyume/${name}` }))), stderr: "" };
      }
      read.push(args[3]);
      return { status: 0, stdout: JSON.stringify({ deployment: { resources: [{ id: "aaaaaaaa-0000-4000-8000-00000000000" + read.length }] } }), stderr: "" };
    };
    const owned = ownedIdsFromStacks(undefined, run);
    expect(owned.stacks).toEqual(["idle", "prod-month", "prod-day", "staging-day", "testing-month"]);
    expect(owned.ids.size).toBe(5);
  });

  it("npm run status lists prod's layers", async () => {
    const cli = async () => ({ status: 0, stdout: JSON.stringify([{ name: "idle" }, { name: "prod-month", resourceCount: 3 }, { name: "prod-day", resourceCount: 9 }]), stderr: "" });
    const stacks = await listStacks(cli);
    expect(stacks.map((s) => [s.name, s.environment, s.layer])).toEqual([
      ["idle", undefined, "idle"],
      ["prod-day", "prod", "day"],
      ["prod-month", "prod", "month"],
    ]);
  });
});
