// The closing table of `rehearse --serverless`: a workshop day of N hours on serverless against the
// instance variant's day, both from the simulator's billing (meters over N simulated hours) and from the
// cost model (the day layer's forecast for one N-hour day, priced from the simulator's catalogue).
// Serverless: the rehearsal's own replica, billed while the clock ran N hours. Instance: a probe
// simulator runs the instance variant's day instance (type, OS volume) for N simulated hours.
import type { LocalCloud } from "../local-cloud";
import { startSimulator } from "../simulator";
import { externalCosts, HOURS_PER_MONTH, loadPriceBook, moneySettingsOf, periodForecast, planFromConfigs, sumCost, verdaForMoney, type ConfigValues, type Currency } from "../../infra/money";

export interface DayCost {
  variant: string;
  /** The simulator's bill for the day layer over the day's hours. */
  simBill: number;
  /** The cost model's forecast for the day layer, one day of the same hours. */
  forecast: number;
  /** The forecast's lines (what it priced). */
  items: string[];
}

const HOUR_MS = 3_600_000;

function forecastDay(book: Awaited<ReturnType<typeof loadPriceBook>>, day: ConfigValues, month: ConfigValues, hours: number, currency: Currency): { cost: number; items: string[] } {
  const plan = planFromConfigs({ day, month });
  const lines = periodForecast(plan, book, externalCosts(moneySettingsOf(day).forecast, currency), { workshopDays: 1, hoursPerDay: hours, periodHours: HOURS_PER_MONTH, trashHours: 0 }).filter((l) => l.layer === "day");
  return { cost: sumCost(lines), items: lines.map((l) => `${l.item} at ${l.perHour.toFixed(4)}/h`) };
}

/** The instance variant's day instance and OS volume for `hours` on a probe simulator: its meters' bill. */
async function instanceDayBill(host: string, day: ConfigValues, month: ConfigValues, hours: number): Promise<number> {
  const instance = planFromConfigs({ day, month }).instance;
  if (!instance) throw new Error("the instance variant's day stack plans no instance");
  const probe = await startSimulator({ host, speed: 1, timing: { orderedMs: 5, provisioningMs: 10, volumeCreateMs: 5 } });
  try {
    const { client } = verdaForMoney({ clientId: probe.clientId, clientSecret: probe.clientSecret, baseUrl: probe.baseUrl, retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 20 } });
    const id = await client.deployInstance({
      instance_type: instance.instanceType,
      image: "ubuntu-24.04-cuda-12.8-open-docker",
      hostname: "cost-probe",
      location_code: instance.location,
      is_spot: instance.spot,
      os_volume: { name: "cost-probe-os", size: instance.osVolumeGb },
    });
    const until = Date.now() + 10_000;
    while ((await client.getInstance(id))?.status !== "running") {
      if (Date.now() > until) throw new Error("the cost probe's instance did not start");
      await new Promise((r) => setTimeout(r, 10));
    }
    const billed = () => probe.state().meters.reduce((n, m) => n + m.cost, 0);
    const before = billed();
    probe.advanceClock(hours * HOUR_MS);
    return billed() - before;
  } finally {
    await probe.close();
  }
}

/**
 * Both variants' day: the serverless bill measured in the rehearsal, the instance bill on a probe, both
 * forecasts from the model. `stackForecast` is the day stack's own costEstimate (its money gate): it must
 * equal the model's serverless figure here.
 */
export async function compareDayCosts(
  cloud: LocalCloud,
  stacks: { month: object; day: object; instanceDay: object },
  measured: { serverlessBill: number; stackForecast: number },
  hours: number,
): Promise<DayCost[]> {
  const currency = cloud.verda.state().currency;
  const { api } = verdaForMoney({ clientId: cloud.verda.clientId, clientSecret: cloud.verda.clientSecret, baseUrl: cloud.verda.baseUrl });
  const book = await loadPriceBook(api, currency);
  const month = stacks.month as ConfigValues;
  const serverless = forecastDay(book, stacks.day as ConfigValues, month, hours, currency);
  if (Math.abs(serverless.cost - measured.stackForecast) > 1e-6) {
    throw new Error(`the day stack's costEstimate forecast (${measured.stackForecast}) differs from the cost model's (${serverless.cost}) for the same day`);
  }
  const instance = forecastDay(book, stacks.instanceDay as ConfigValues, month, hours, currency);
  const probeHost = new URL(cloud.verda.origin).hostname;
  return [
    { variant: "serverless (1 H100 spot replica at min 1; on-demand fallback at min 0)", simBill: measured.serverlessBill, forecast: serverless.cost, items: serverless.items },
    { variant: "instance (the default rehearsal's day)", simBill: await instanceDayBill(probeHost, stacks.instanceDay as ConfigValues, month, hours), forecast: instance.cost, items: instance.items },
  ];
}

export function costTable(rows: DayCost[], hours: number, currency: string): string {
  const header = ["variant", `sim. bill (${currency})`, `forecast (${currency})`, "what the forecast prices"];
  const body = rows.map((r) => [r.variant, r.simBill.toFixed(4), r.forecast.toFixed(4), r.items.join(" + ")]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ");
  const [sl, inst] = rows;
  const ratio = sl && inst && inst.simBill > 0 ? `serverless / instance: ${(sl.simBill / inst.simBill).toFixed(2)} (bill), ${(sl.forecast / inst.forecast).toFixed(2)} (forecast)` : "";
  return [`A ${hours}-hour workshop day, day layer only (the month's SFS and app host are the same for both; the instance variant's month also keeps a scratch)`, line(header), line(widths.map((w) => "-".repeat(w))), ...body.map(line), ratio].join("\n");
}
