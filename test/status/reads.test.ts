// What `npm run status` reads to draw its screen, on a day 2 h in (the Verda simulator and a local S3 on
// 127.0.105.0/24, a real Pulumi file backend): Verda's lists once, with no GET per resource for the stacks' cost
// reports; the idle stack's secrets only as its outputs (`stack output --show-secrets`), never its whole state
// decrypted (`stack export --show-secrets`). The screen's numbers stay what they were.
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collectStatus, type StatusReport } from "../../infra/status/collect";
import { verdaForStatus } from "../../infra/status/verda";
import type { AsyncCli } from "../../infra/status/stacks";
import { repoRoot } from "../support/pulumi-cli";
import { StatusScenario } from "./scenario";

describe("npm run status: what it reads", () => {
  const s = new StatusScenario();
  const cliCalls: string[][] = [];
  const perResourceGets: string[] = [];
  let report: StatusReport;

  beforeAll(async () => {
    await s.start("2026-12-03T09:00:00Z");
    await s.idle();
    await s.month(100);
    await s.dayUp(400);
    s.rig.sim.advanceClock(2 * 3_600_000);
    const cli: AsyncCli = async (args) => {
      cliCalls.push(args);
      const r = await s.run(path.join(repoRoot, "scripts/pulumi"), [...args, "--non-interactive"]);
      return { status: r.code, stdout: r.stdout, stderr: r.stderr };
    };
    const verda = (options: Parameters<typeof verdaForStatus>[0]) => {
      const clients = verdaForStatus(options);
      const { client } = clients;
      const getInstance = client.getInstance.bind(client);
      const getVolume = client.getVolume.bind(client);
      client.getInstance = (id) => (perResourceGets.push(`instance ${id}`), getInstance(id));
      client.getVolume = (id) => (perResourceGets.push(`volume ${id}`), getVolume(id));
      return clients;
    };
    ({ report } = await collectStatus({ cli, env: s.env, now: new Date(s.rig.sim.state().clock.now), verda }));
  }, 300_000);
  afterAll(() => s.close(), 60_000);

  it("prices the stacks' running resources from the lists it already read: no GET per instance or volume", () => {
    const rows = report.stacks.ok ? report.stacks.value : [];
    const day = rows.find((r) => r.name === "workshop-day");
    const month = rows.find((r) => r.name === "workshop-month");
    expect(day?.cost?.ok && day.cost.value.toDate).toBeCloseTo((day?.perHour ?? 0) * 2, 1);
    expect(month?.cost?.ok && month.cost.value.toDate).toBeGreaterThan(0);
    expect(perResourceGets).toEqual([]);
  });

  it("reads the idle stack's R2 keys from its outputs, without decrypting its whole state", () => {
    expect(report.backups.ok).toBe(true);
    expect(cliCalls.filter((a) => a.includes("export") && a.includes("--show-secrets"))).toEqual([]);
    expect(cliCalls).toContainEqual(["stack", "output", "--stack", "idle", "--json", "--show-secrets"]);
    expect(report.attention).toEqual([]);
  });
});
