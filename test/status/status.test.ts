// `npm run status` end to end: the real script in a child process against the Verda simulator and a
// local S3 on loopback (127.0.105.0/24 for the simulator), with a real Pulumi file backend whose stacks
// hold the ids of what each moment created at the simulated Verda.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StatusScenario, VERDA_SECRET, type Run } from "./scenario";
import { deployRunning } from "../money/helpers";
import { formatMoney, formatPerHour } from "../../infra/money/prices";

const sfsSets = (s: StatusScenario, bytes: number) => [
  { bucket: s.s3.buckets.models, prefix: "models", files: [{ path: "checkpoints/a.safetensors", size: bytes }, { path: "loras/b.safetensors", size: 1000 }] },
  { bucket: s.s3.buckets.cache, prefix: "cache", files: [{ path: "snap.tar", size: 2000 }] },
  { bucket: s.s3.buckets.workerContainer, prefix: "worker", files: [{ path: "worker.tar", size: 3000 }] },
  { bucket: s.s3.buckets.userFiles, prefix: "scratch/outputs", files: [{ path: "o.mp4", size: 4000 }] },
];

function expectNoSecrets(s: StatusScenario, r: Run) {
  for (const secret of [VERDA_SECRET, s.s3.secretAccessKey, s.s3.accessKeyId, "status-test-passphrase"]) {
    expect(r.stdout).not.toContain(secret);
    expect(r.stderr).not.toContain(secret);
  }
}

const row = (text: string, stack: string) => text.split("\n").find((l) => l.includes(` ${stack} `)) ?? "";

describe("npm run status against the simulated cloud", () => {
  const s = new StatusScenario();
  const hourAgo = () => new Date(Date.parse(s.rig.sim.state().clock.now) - 3_600_000);

  beforeAll(async () => {
    await s.start("2026-12-03T09:00:00Z");
    await s.idle({ enabled: true, cutoff: "22:00", morning: "06:00", timezone: "Europe/Berlin" });
  }, 180_000);
  afterAll(() => s.close(), 60_000);

  it("idle only: the idle layer up, nothing billing at Verda, sets with no backup yet, the next cutoff; exit 0; --json carries the same", async () => {
    const r = await s.status();
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(row(r.stdout, "idle")).toMatch(/idle\s+idle\s+up/);
    expect(r.stdout).toContain("Verda billing now: $0.00/h ($0.00 a day) for 0 resource(s)");
    expect(r.stdout).toMatch(/models\s+none yet/);
    // 22:00 in Berlin (UTC+1 in December) is 21:00 UTC.
    expect(r.stdout).toContain("next cutoff 2026-12-03 21:00Z (22:00 Europe/Berlin, in 12 h 0 min) tears down workshop-day");
    expect(r.stdout).toContain("nothing needs attention");
    expect(r.stdout).toMatch(/took \d+\.\d s$/m);
    expectNoSecrets(s, r);

    const j = await s.status(["--json"]);
    expect(j.code).toBe(0);
    const report = JSON.parse(j.stdout);
    expect(report.verda.value.perHour).toBe(0);
    expect(report.stacks.value.map((x: { name: string; up: boolean }) => [x.name, x.up])).toEqual([["idle", true]]);
    expect(report.watchdog.value.nextCutoff).toBe("2026-12-03T21:00:00.000Z");
    expect(report.attention).toEqual([]);
    expectNoSecrets(s, j);
  }, 180_000);

  it("day up: month and day layers up with their billing; the backups' age, size and place; after the destroy the day is down and billing drops", async () => {
    await s.backup(hourAgo(), sfsSets(s, 5_000_000));
    await s.month(100);
    await s.dayUp(400);
    s.rig.sim.advanceClock(2 * 3_600_000);

    const j = JSON.parse((await s.status(["--json"])).stdout);
    const rows = Object.fromEntries(j.stacks.value.map((x: { name: string }) => [x.name, x]));
    expect(rows["workshop-day"].up).toBe(true);
    expect(rows["workshop-day"].environment).toBe("workshop");
    expect(rows["workshop-month"].up).toBe(true);
    // The instance (3.56/h on the simulator's catalogue) with its OS volume and scratch.
    expect(rows["workshop-day"].perHour).toBeGreaterThan(3.56);
    expect(j.verda.value.perHour).toBeCloseTo(rows["workshop-day"].perHour + rows["workshop-month"].perHour, 6);
    expect(rows["workshop-day"].cost.value.toDate).toBeCloseTo(rows["workshop-day"].perHour * 2, 1);
    const models = j.backups.value.find((b: { set: string }) => b.set === "models").status.value.last;
    expect(models.bytes).toBe(5_001_000);
    expect(models.files).toBe(2);
    expect(models.ageHours).toBeCloseTo(3, 1);
    expect(models.where).toMatch(/^r2:comfyume-model-vault-backups\/models\/manifests\/\d{4}-\d\d-\d\dT\d{6}Z\.tsv$/);
    expect(j.backups.value.map((b: { set: string }) => b.set)).toContain("scratch/outputs");

    const text = await s.status();
    expect(text.code).toBe(0);
    expect(row(text.stdout, "workshop-day")).toMatch(/workshop\s+day\s+workshop-day\s+up\s+\d+\s+\$3\.\d+\/h/);
    expect(row(text.stdout, "workshop-day")).toContain("of $400.00");
    // The screen and --json carry the same numbers.
    expect(row(text.stdout, "workshop-day")).toContain(formatPerHour(rows["workshop-day"].perHour, "usd"));
    expect(row(text.stdout, "workshop-day")).toContain(`${formatMoney(rows["workshop-day"].cost.value.forecast, "usd")} of $400.00`);
    expect(text.stdout).toContain(`Verda billing now: ${formatPerHour(j.verda.value.perHour, "usd")}`);
    expect(text.stdout).toMatch(/models\s+\S+ \S+\s+3\.0 h\s+5\.0 MB\s+2\s+r2:comfyume-model-vault-backups\/models\/manifests\//);
    expectNoSecrets(s, text);

    await s.backup(new Date(s.rig.sim.state().clock.now), sfsSets(s, 6_000_000));
    await s.dayDestroyed();
    const after = await s.status(["--json"]);
    expect(after.code).toBe(0);
    const a = JSON.parse(after.stdout);
    const day = a.stacks.value.find((x: { name: string }) => x.name === "workshop-day");
    expect(day.up).toBe(false);
    expect(day.perHour).toBe(0);
    expect(a.verda.value.perHour).toBeLessThan(j.verda.value.perHour - 3.5);
    expect(a.backups.value.find((b: { set: string }) => b.set === "models").status.value.last.ageHours).toBeLessThan(0.1);
    // The day's scratch went to Verda's trash: listed, billed, but nothing the sweep would delete by default.
    expect(a.leftovers.value.items.map((l: { kind: string; id: string }) => [l.kind, l.id])).toEqual([["volume in trash", s.ids.scratch]]);
    expect(a.leftovers.value.sweepable).toBe(0);
  }, 360_000);

  it("a stray instance is a leftover that needs attention (exit 1)", async () => {
    const stray = await deployRunning(s.rig.client, { hostname: "made-in-the-console", instanceType: "CPU.4V.16G" });
    try {
      const r = await s.status();
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(new RegExp(`stray instance\\s+made-in-the-console\\s+${stray.id}`));
      expect(r.stdout).toContain("needs attention (1):");
      expect(r.stdout).toContain("billed leftover(s) no stack owns: npm run sweep");
    } finally {
      await s.rig.client.instanceAction({ action: "delete", id: stray.id, volume_ids: [stray.os_volume_id!], delete_permanently: true });
    }
  }, 180_000);

  it("Verda answering 500: billing and costs unknown with the cause and a fix, the rest still printed, exit 1", async () => {
    s.rig.sim.setFaults([{ type: "http", method: "GET", path: "/v1/balance", status: 500, message: "internal error" }]);
    try {
      const r = await s.status();
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/Verda billing now: unknown \(.*500.*; fix: check VERDA_BASE_URL/);
      expect(row(r.stdout, "workshop-month")).toMatch(/up\s+\d+\s+unknown/);
      expect(r.stdout).toMatch(/models\s+\d{4}-\d\d-\d\d/); // backups still read
      expect(r.stdout).toContain("next cutoff");
      expect(r.stdout).toMatch(/needs attention \(\d+\):\n {2}- Verda: unknown/);
      expectNoSecrets(s, r);
      const j = JSON.parse((await s.status(["--json"])).stdout);
      expect(j.verda.ok).toBe(false);
      expect(j.verda.cause).toMatch(/500/);
      expect(j.backups.ok).toBe(true);
    } finally {
      s.rig.sim.clearFaults();
    }
  }, 180_000);

  it("Pulumi backend unreadable: layers unknown with the cause and a fix; Verda (credentials from the environment) still shown, but no leftovers claimed; exit 1", async () => {
    const r = await s.status([], { PULUMI_BACKEND_URL: `file://${s.dir}/no-such-state`, VERDA_CLIENT_ID: s.rig.sim.clientId, VERDA_CLIENT_SECRET: VERDA_SECRET, VERDA_BASE_URL: s.rig.sim.baseUrl });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/layers: unknown \(scripts\/pulumi stack ls failed: .*no-such-state.*; fix: check PULUMI_BACKEND_URL/);
    expect(r.stdout).toMatch(/Verda billing now: \$0\.\d+\/h/);
    expect(r.stdout).toMatch(/leftovers: unknown \(the stacks cannot be listed/);
    expect(r.stdout).not.toContain("stray instance");
    expect(r.stdout).toMatch(/backups: unknown \(.*; fix: .*/);
    expectNoSecrets(s, r);
  }, 180_000);

  it("R2 down: backups unknown with the cause and a fix, Verda and the layers still shown, exit 1; secrets never printed", async () => {
    await s.s3.close();
    const r = await s.status();
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/backups: unknown \(rclone lsf r2:comfyume-\S+: .+; fix: /);
    expect(r.stdout).toMatch(/Verda billing now: \$\d/);
    expect(row(r.stdout, "workshop-month")).toMatch(/up\s+\d+\s+\$0\.\d+\/h/);
    expect(r.stdout).toMatch(/needs attention \(1\):\n {2}- backups: unknown/);
    expectNoSecrets(s, r);
  }, 180_000);
});
