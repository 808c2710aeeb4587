// Benchmark: the cost tool's forecast for a workshop month (8 days × 10 h on 1× H100, SFS 220 GB,
// scratch 50 GB for the month) next to an always-on instance, then the same month played in the
// Verda simulator on a fast (manually advanced) clock: its billing meters must agree with the
// forecast within 2 %. Run: npm run bench:cost
import { startSimulator } from "../../sim/simulator";
import {
  alwaysOnForecast,
  externalCosts,
  formatMoney,
  loadPriceBook,
  parseMoneySettings,
  periodForecast,
  sumCost,
  verdaForMoney,
  type PhasePlan,
  type Schedule,
} from "../../infra/money";
import { renderTable } from "../../infra/money/table";
import type { VerdaClient } from "../../infra/verda/client";

const HOUR = 3_600_000;
const TIMING = { orderedMs: 5, provisioningMs: 10, instanceActionMs: 5, instanceDeleteMs: 5, volumeCreateMs: 5, volumeAttachMs: 5 };

export interface MonthBenchResult {
  currency: "usd" | "eur";
  phased: number;
  alwaysOn: number;
  ratio: number;
  verdaForecast: number;
  meters: number;
  agreementPercent: number;
  table: string;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function volumeReady(client: VerdaClient, id: string) {
  return until(`volume ${id}`, async () => {
    const v = await client.getVolume(id);
    return v && ["detached", "created"].includes(String(v.status)) ? v : undefined;
  });
}

/** `speed` > 1 also lets real time drive the simulated clock (3600: one real second is an hour). */
export async function runWorkshopMonthBench(speed = 1): Promise<MonthBenchResult> {
  const settings = parseMoneySettings({});
  const schedule: Schedule = { workshopDays: 8, hoursPerDay: 10, periodHours: 730, trashHours: settings.forecast.trashHours };
  const plan: PhasePlan = {
    instance: { instanceType: "1H100.80S.32V", location: "FIN-01", spot: false, osVolumeGb: 100 },
    sfsGb: 220,
    scratch: { sizeGb: 50, lifetime: "month", deletePermanently: false },
  };

  const sim = await startSimulator({ timing: TIMING, balance: 100_000, speed });
  try {
    const { client, api } = verdaForMoney({ clientId: sim.clientId, clientSecret: sim.clientSecret, baseUrl: sim.baseUrl });
    const balance = await api.balance();
    const book = await loadPriceBook(api, balance.currency);
    const external = externalCosts(settings.forecast, balance.currency);
    const forecast = periodForecast(plan, book, external, schedule);
    const alwaysOn = alwaysOnForecast(plan, book, external, schedule);

    // The month stack: SFS and scratch for the whole period.
    const sfs = await volumeReady(client, await client.createVolume({ type: "NVMe_Shared", name: "comfyume-workshop-sfs", size: 220, location_code: "FIN-01" }));
    const scratch = await volumeReady(client, await client.createVolume({ type: "NVMe", name: "comfyume-workshop-scratch", size: 50, location_code: "FIN-01" }));
    let simHours = 0;
    const advance = (hours: number) => {
      sim.advanceClock(hours * HOUR);
      simHours += hours;
    };

    // Each workshop day: the day stack's instance (100 GB OS volume, scratch attached), 10 h, then
    // deleted with its OS volume permanently as the Instance provider does.
    for (let day = 1; day <= schedule.workshopDays; day++) {
      const id = await client.deployInstance({
        instance_type: "1H100.80S.32V",
        image: "ubuntu-24.04-cuda-12.8-open-docker",
        hostname: `comfyume-workshop-day-${day}`,
        description: "bench",
        location_code: "FIN-01",
        os_volume: { name: `day-${day}-os`, size: 100 },
        existing_volumes: [scratch.id],
      });
      const running = await until(`day ${day} running`, async () => {
        const i = await client.getInstance(id);
        return i?.status === "running" && i.os_volume_id ? i : undefined;
      });
      await client.volumeAction({ action: "attach", id: sfs.id, instance_id: id });
      advance(schedule.hoursPerDay);
      await client.instanceAction({ action: "delete", id, volume_ids: [running.os_volume_id!], delete_permanently: true });
      await until(`day ${day} deleted`, async () => ((await client.getInstance(id)) ? undefined : true));
      await until(`scratch detached`, async () => ((await client.getVolume(scratch.id))?.status === "detached" ? true : undefined));
      advance(24 - schedule.hoursPerDay);
    }
    advance(schedule.periodHours - simHours);
    // Month end: the month stack goes down (SFS and scratch deleted for good).
    await client.deleteVolume(sfs.id, true);
    await client.deleteVolume(scratch.id, true);

    const state = sim.state();
    const meters = state.total_cost;
    const verdaForecast = sumCost(forecast, "day") + sumCost(forecast, "month");
    const agreementPercent = (Math.abs(meters - verdaForecast) / verdaForecast) * 100;
    const phased = sumCost(forecast);
    const alwaysOnTotal = sumCost(alwaysOn);
    const m = (n: number) => formatMoney(n, balance.currency);
    const byKind = (pred: (d: string) => boolean) => state.meters.filter((x) => pred(x.description)).reduce((s, x) => s + x.cost, 0);

    const table = [
      "Workshop month: 8 days × 10 h on 1× H100 (1H100.80S.32V), SFS 220 GB, scratch 50 GB, 730 h period",
      "",
      renderTable(
        ["item", "phased (tool)", "always-on (tool)"],
        [
          ...(["day", "month", "idle"] as const).map((layer) => [`${layer} layer`, m(sumCost(forecast, layer)), m(sumCost(alwaysOn, layer))]),
          ["total", m(phased), m(alwaysOnTotal)],
        ],
        [1, 2],
      ),
      "",
      `always-on / phased ratio: ${(alwaysOnTotal / phased).toFixed(2)}× (phases save ${m(alwaysOnTotal - phased)} a month)`,
      "",
      renderTable(
        ["Verda part (no mello/R2)", "forecast", "simulator meters"],
        [
          ["instances", m(forecast.filter((l) => l.item.startsWith("instance")).reduce((s, l) => s + l.cost, 0)), m(byKind((d) => d.startsWith("instance")))],
          ["OS volumes", m(forecast.filter((l) => l.item.startsWith("OS volume")).reduce((s, l) => s + l.cost, 0)), m(byKind((d) => d.startsWith("OS volume")))],
          ["SFS", m(forecast.filter((l) => l.item.startsWith("SFS")).reduce((s, l) => s + l.cost, 0)), m(byKind((d) => d.startsWith("SFS")))],
          ["scratch", m(forecast.filter((l) => l.item.startsWith("scratch")).reduce((s, l) => s + l.cost, 0)), m(byKind((d) => d.startsWith("volume")))],
          ["total", m(verdaForecast), m(meters)],
        ],
        [1, 2],
      ),
      "",
      `meters vs forecast: ${agreementPercent.toFixed(3)} % apart (limit 2 %) over ${state.meters.length} meters; ` +
        `clock speed ${speed}× plus ${simHours} h advanced by hand`,
    ].join("\n");
    return { currency: balance.currency, phased, alwaysOn: alwaysOnTotal, ratio: alwaysOnTotal / phased, verdaForecast, meters, agreementPercent, table };
  } finally {
    await sim.close();
  }
}

if (require.main === module) {
  const started = Date.now();
  (async () => {
    const manual = await runWorkshopMonthBench(1);
    console.log(manual.table);
    // Again with real time driving the clock too (lifecycle latency becomes billed simulated time).
    const fast = await runWorkshopMonthBench(3600);
    console.log(`\nsame month at clock speed 3600× (1 real s = 1 simulated h): meters ${formatMoney(fast.meters, fast.currency)} vs forecast ${formatMoney(fast.verdaForecast, fast.currency)}, ${fast.agreementPercent.toFixed(3)} % apart`);
    console.log(`\n(bench took ${((Date.now() - started) / 1000).toFixed(1)} s)`);
    const worst = Math.max(manual.agreementPercent, fast.agreementPercent);
    if (worst > 2) {
      console.error(`FAIL: meters and forecast differ by ${worst.toFixed(2)} %`);
      process.exit(1);
    }
  })()
    .catch((e: unknown) => {
      console.error(e);
      process.exit(1);
    });
}
