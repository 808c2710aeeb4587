// npm run rehearse [-- --provisioning-ms N --speed N]: the whole workshop cycle on the local
// simulated cloud with the real Pulumi CLI; prints a table and exits non-zero on any failed check.
// npm run rehearse -- --app-on-verda: the same cycle with the app on a Verda CPU instance the month owns
// (config app.host = verda; docs/rehearsal.md).
// npm run rehearse -- --serverless: the GPU work on serverless deployments, the app on Verda (docs/rehearsal.md).
// npm run rehearse -- --adopt: adopt an SFS, the app instance and flat buckets made out of band (sim/rehearsal/adopt.ts).
// npm run rehearse -- --faults [--only NAME ...]: the fault rehearsal (docs/rehearsal.md, "Faults").
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { firstCreateS, timelineTable } from "../sim/rehearsal/event-log";
import { rehearseFaults } from "../sim/rehearsal/faults/run";
import { rehearse } from "../sim/rehearsal/run";

async function faults(only: string[]): Promise<number> {
  const started = Date.now();
  const say = (line: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}`);
  say(`fault rehearsal${only.length ? ` (only: ${only.join(", ")})` : ""}; logs in .comfyume/rehearsal-faults/`);
  let result;
  try {
    result = await rehearseFaults({ say, only });
  } catch (e) {
    console.error(`\nfault rehearsal FAILED: ${(e as Error).message}`);
    return 1;
  }
  console.log(`\nFAULT TABLE\n${result.table}\n`);
  const failed = result.rows.filter((r) => r.problems.length).length;
  console.log(
    `fault rehearsal ${result.ok ? "passed" : "FAILED"}: ${result.rows.length - failed} of ${result.rows.length} fault(s) ok; ` +
      `took ${(result.totalMs / 1000).toFixed(0)} s (stacks up in ${(result.setupMs / 1000).toFixed(0)} s)`,
  );
  return result.ok ? 0 : 1;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      "provisioning-ms": { type: "string", default: "4000" },
      speed: { type: "string", default: "60" },
      faults: { type: "boolean", default: false },
      "app-on-verda": { type: "boolean", default: false },
      serverless: { type: "boolean", default: false },
      adopt: { type: "boolean", default: false },
      only: { type: "string", multiple: true, default: [] },
    },
  });
  if (values.faults) return faults(values.only);
  const provisioningMs = Number(values["provisioning-ms"]);
  const speed = Number(values.speed);
  if (!(provisioningMs > 0) || !(speed > 0)) {
    console.error("rehearse: --provisioning-ms and --speed must be positive numbers");
    return 2;
  }
  const started = Date.now();
  const say = (line: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}`);
  const appOnVerda = values["app-on-verda"];
  const serverless = values.serverless;
  const adopt = values.adopt;
  const variant = serverless ? " (serverless GPU workers, app on a Verda CPU instance)" : adopt ? " (adopting resources made out of band)" : appOnVerda ? " (app on a Verda CPU instance)" : "";
  say(`rehearsal${variant}: simulated provisioning ${provisioningMs} ms, billing clock ×${speed}; logs in .comfyume/rehearsal/`);
  let result;
  try {
    result = await rehearse({ provisioningMs, speed, say, appOnVerda, serverless, adopt });
  } catch (e) {
    console.error(`\nrehearsal FAILED: ${(e as Error).message}`);
    return 1;
  }
  const b = result.benchmark;
  console.log(`\n${result.table}\n`);
  if (serverless) {
    console.log(`serverless day up: ${(b.dayUpMs / 1000).toFixed(1)} s wall from 'pulumi up' to a running replica (cold start ${b.provisioningMs} ms); slowest steps: ${b.slowest.map((t) => `${t.resource} ${(t.ms / 1000).toFixed(1)} s`).join(", ")}`);
  }
  // The adopt and serverless variants measure adoption / scaling, not the day-up restore: their tables are the result.
  if (serverless || adopt) {
    console.log(`rehearsal ${result.ok ? "passed" : "FAILED"} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    return result.ok ? 0 : 1;
  }
  console.log(
    `day-up benchmark: ${(b.dayUpMs / 1000).toFixed(1)} s wall / (${(b.provisioningMs / 1000).toFixed(1)} s provisioning + ` +
      `${(b.restoreCopyMs / 1000).toFixed(2)} s restore copy of ${(b.restoreBytes / 1048576).toFixed(1)} MiB at ${b.diskMBps.toFixed(0)} MB/s) = ${b.ratio.toFixed(2)} (target <= 1.10)`,
  );
  const overheadS = (b.dayUpMs - b.provisioningMs - b.restoreCopyMs) / 1000;
  console.log(`  overhead: wall - (provisioning + restore copy) = ${overheadS.toFixed(1)} s (target <= 5 s); the update itself ${b.timeline.updateS ?? "?"} s, the rest is the CLI (and the preview, when the day was up); the first create at ${firstCreateS(b.timeline) ?? "?"} s of the update (load ${loadavg()[0].toFixed(1)})`);
  if (b.floorMs) {
    const floorS = b.floorMs / 1000;
    console.log(`  of which the engine's floor: ${floorS.toFixed(1)} s, a second 'pulumi up' of the running day with nothing to change (CLI, policy pack, program, providers' checks); the other ${(overheadS - floorS).toFixed(1)} s are the host's work and the steps between`);
  }
  if (b.firstBoot?.length) console.log(`  the worker's first boot (stock image): ${b.firstBoot.join("; ")}`);
  console.log(`  slowest day-up steps: ${b.slowest.map((t) => `${t.resource} ${(t.ms / 1000).toFixed(1)} s`).join(", ")}`);
  console.log(`\nday-up timeline (engine events):\n${timelineTable(b.timeline)}`);
  console.log(`rehearsal ${result.ok ? "passed" : "FAILED"} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return result.ok ? 0 : 1;
}

main().then((code) => process.exit(code));
