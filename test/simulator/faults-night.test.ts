// Fault kinds for the nightly destroy: a 207 partial result on the delete action, and a scratch
// volume that stays `detaching` after its instance is deleted (until the rule is cleared).
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { RunningSimulator } from "../../infra/simulator";
import { Caller, expectResponsesConform, startTestSim } from "./helpers";

describe("simulator: nightly-destroy faults", () => {
  let sim: RunningSimulator;
  let c: Caller;
  beforeAll(async () => ({ sim, c } = await startTestSim()));
  beforeEach(() => sim.reset());
  afterAll(async () => {
    expectResponsesConform(sim);
    await sim.close();
  });

  it("action_partial: delete answers 207 with a per-instance error and the instance stays", async () => {
    const i = await c.runningInstance();
    sim.setFaults({ type: "action_partial", action: "delete", status_code: 503, message: "host busy", count: 1 });
    const r = await c.call("PUT", "/instances", { action: "delete", id: i.id });
    expect(r.status).toBe(207);
    expect(r.json).toEqual([{ instanceId: i.id, action: "delete", status: "error", error: "host busy", statusCode: 503 }]);
    expect((await c.instance(i.id)).status).toBe("running");
    // Other actions are not caught, and the rule was used up: the next delete goes through.
    expect((await c.call("PUT", "/instances", { action: "delete", id: i.id })).status).toBe(202);
  });

  it("volume_stuck_detaching: the block volume stays detaching (not attachable) until the rule is cleared", async () => {
    const vol = await c.createVolume({ type: "NVMe", name: "scratch", size: 10 });
    await c.waitVolume(vol, "detached");
    const i = await c.createInstance({ existing_volumes: [vol] });
    await c.waitInstance(i, "running");
    sim.setFaults({ type: "volume_stuck_detaching", volume_name: "scratch" });
    expect((await c.call("PUT", "/instances", { action: "delete", id: i })).status).toBe(202);
    await new Promise((r) => setTimeout(r, 300));
    expect((await c.volume(vol)).status).toBe("detaching");
    const again = await c.call("POST", "/instances", {
      instance_type: "CPU.4V.16G", image: "ubuntu-24.04", hostname: "sim-test", location_code: "FIN-01", existing_volumes: [vol],
    });
    expect(again.status).toBe(400);
    expect(again.json.message).toMatch(/not detached/);
    sim.clearFaults();
    await c.waitVolume(vol, "detached");
  });
});
