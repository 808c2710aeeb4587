// The money gate's Verda reads (docs/money.md): each list read once per gate, and the independent ones sent
// together in the first round, not one after another (each is a round trip to Verda before the first create).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MoneyApi } from "../../infra/money";
import { createVolume, simRig, type SimRig } from "./helpers";

interface Call {
  method: string;
  /** How many reads had finished when this one was sent: 0 = the first round. */
  finishedBefore: number;
}

function recording(api: MoneyApi): { api: MoneyApi; calls: Call[] } {
  const calls: Call[] = [];
  let finished = 0;
  const wrapped = {} as Record<string, unknown>;
  for (const [method, fn] of Object.entries(api) as [string, (...a: unknown[]) => Promise<unknown>][]) {
    wrapped[method] = (...args: unknown[]) => {
      calls.push({ method, finishedBefore: finished });
      return fn(...args).finally(() => {
        finished += 1;
      });
    };
  }
  return { api: wrapped as unknown as MoneyApi, calls };
}

const count = (calls: Call[]) => calls.reduce<Record<string, number>>((n, c) => ({ ...n, [c.method]: (n[c.method] ?? 0) + 1 }), {});

const dayConfig = (hostname: string) =>
  ({
    stack: "workshop-day",
    layer: "day",
    inference: "instance",
    gpu: { hostname, instanceType: "1H100.80S.32V", location: "FIN-01", spot: false, osVolumeSizeGb: 100 },
    scratch: { sizeGb: 50, lifetime: "day", deletePermanently: true },
    money: {},
  }) as never;

describe("the money gate's Verda reads", () => {
  let rig: SimRig;
  beforeAll(async () => {
    rig = await simRig();
  });
  afterAll(() => rig.close());

  it("reads each list once, and balance, instances, volumes and trash together in the first round", async () => {
    const { moneyGate } = await import("../../infra/money/phase-gate");
    const sfs = await createVolume(rig.client, { name: "sfs-gate-reads", type: "NVMe_Shared", sizeGb: 100 });
    const { api, calls } = recording(rig.api);
    const gate = await moneyGate(dayConfig("gate-reads-1"), undefined, { api, monthSfs: { id: sfs.id, sizeGb: 100 } });
    expect(gate?.placement).toEqual({ instanceType: "1H100.80S.32V", location: "FIN-01", spot: false });
    expect(count(calls)).toEqual({ balance: 1, instances: 1, volumes: 1, trash: 1, instanceTypes: 1, volumeTypes: 1, isAvailable: 1 });
    for (const method of ["balance", "instances", "volumes", "trash"]) {
      expect(calls.find((c) => c.method === method)?.finishedBefore, method).toBe(0);
    }
  });

  it("a read sent ahead that this run never needs may fail without failing the gate; a needed one fails it", async () => {
    const { moneyGate } = await import("../../infra/money/phase-gate");
    const pulumi = await import("@pulumi/pulumi");
    const month = { stack: "workshop-month", layer: "month", sfs: { name: "gate-reads-sfs", sizeGb: 10 }, scratch: { sizeGb: 50, lifetime: "day", deletePermanently: false }, money: {} } as never;
    await createVolume(rig.client, { name: "gate-reads-sfs", type: "NVMe_Shared", sizeGb: 10 });
    // Already deployed: the month's check never reads the trash, which is down.
    const trashDown: MoneyApi = { ...rig.api, trash: () => Promise.reject(new Error("trash listing down")) };
    expect((await moneyGate(month, undefined, { api: trashDown }))?.report).toBeDefined();
    const balanceDown: MoneyApi = { ...rig.api, balance: () => Promise.reject(new Error("Verda GET /balance answered 503")) };
    const error = await moneyGate(month, undefined, { api: balanceDown }).catch((e: unknown) => e);
    expect(pulumi.RunError.isInstance(error)).toBe(false);
    expect((error as Error).message).toContain("GET /balance answered 503");
  });
});
