// Prints `npm run status` against the simulated cloud at three moments (idle; day up; after the
// nightly destroy), for docs and the closing note: scripts/node-env tsx test/status/sample.ts
import { StatusScenario } from "./scenario";

const sfsSets = (s: StatusScenario, scale: number) => [
  { bucket: s.s3.buckets.models, prefix: "models", files: [{ path: "checkpoints/wan2.2.safetensors", size: 28e9 * scale }, { path: "loras/style.safetensors", size: 3e8 * scale }] },
  { bucket: s.s3.buckets.cache, prefix: "cache", files: [{ path: "snapshots/config.tar", size: 6.5e9 * scale }] },
  { bucket: s.s3.buckets.workerContainer, prefix: "worker", files: [{ path: "worker.tar", size: 20.5e9 * scale }] },
];
const scratchSets = (s: StatusScenario) => ["inputs", "outputs"].map((d, i) => ({ bucket: s.s3.buckets.userFiles, prefix: `scratch/${d}`, files: [{ path: `${d}/a.mp4`, size: 1.2e9 * (i + 1) }] }));

async function main() {
  const s = new StatusScenario();
  try {
    await s.start(`${new Date().toISOString().slice(0, 10)}T08:00:00Z`);
    const t0 = new Date(s.rig.sim.state().clock.now);
    await s.idle();
    await s.backup(new Date(t0.getTime() - 26 * 3_600_000), [...sfsSets(s, 1), ...scratchSets(s)]);
    await s.month();
    const show = async (title: string) => {
      const r = await s.status();
      console.log(`\n===== ${title} (exit ${r.code})\n${r.stdout}${r.stderr}`);
      const j = JSON.parse((await s.status(["--json"])).stdout);
      console.log("source ms:", JSON.stringify({ stacks: j.stacks.ms, verda: j.verda.ms, backups: j.backups.ms, total: j.elapsedMs }));
    };
    await show("idle (month up, no day)");
    await s.dayUp();
    s.rig.sim.advanceClock(5 * 3_600_000);
    await show("day up, 5 h in");
    await s.backup(new Date(s.rig.sim.state().clock.now), [...sfsSets(s, 1.01), ...scratchSets(s)]);
    await s.dayDestroyed();
    s.rig.sim.advanceClock(10 * 60_000);
    await show("after the nightly destroy");
  } finally {
    await s.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
