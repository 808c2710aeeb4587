// The cost model, as pure functions: what a phase costs per hour before launch, what the month
// will cost (workshop days on the instance, SFS/scratch for the period, mello, R2), and what the
// running resources have cost so far.
import { instanceHourly, replicaHourly, volumeHourly } from "./prices";
import { HOURS_PER_MONTH, type CostLine, type ExternalCosts, type Layer, type Placement, type PriceBook } from "./types";

export interface ScratchPlan {
  sizeGb: number;
  /** `day`: created each workshop day, deleted at night; `month`: kept for the period. */
  lifetime: "day" | "month";
  /** Deleted past the trash (no 96 h of trash billing)? */
  deletePermanently: boolean;
}

/** Serverless GPU workers (inference = serverless): what the day layer scales up. */
export interface ServerlessPlan {
  deployments: { name: string; gpu: string; gpus: number; spot: boolean; minReplicas: number }[];
  /** Replicas start this long before the workshop hours (billed). */
  prewarmMinutes: number;
  /** Estimated replica-hours above the minimum per workshop day, priced at the first deployment. */
  burstReplicaHours: number;
}

/** What the stacks of one environment put up (any part may be absent). */
export interface PhasePlan {
  instance?: Placement & { osVolumeGb: number };
  serverless?: ServerlessPlan;
  sfsGb?: number;
  scratch?: ScratchPlan;
}

export interface Schedule {
  workshopDays: number;
  hoursPerDay: number;
  /** Hours in the forecast period (730 = Verda's month). */
  periodHours: number;
  /** Hours a volume deleted to trash keeps billing. */
  trashHours: number;
}

const line = (layer: Layer, item: string, perHour: number, hours: number): CostLine => ({ layer, item, perHour, hours, cost: perHour * hours });

/** Hourly price of everything one layer keeps up (hours = 1). */
export function layerHourlyLines(layer: Layer, plan: PhasePlan, book: PriceBook, external: ExternalCosts): CostLine[] {
  const lines: CostLine[] = [];
  if (layer === "day" && plan.instance) {
    const i = plan.instance;
    lines.push(line("day", `instance ${i.instanceType}${i.spot ? " (spot)" : ""} in ${i.location}`, instanceHourly(book, i), 1));
    lines.push(line("day", `OS volume ${i.osVolumeGb} GB`, volumeHourly(book, "NVMe", i.osVolumeGb), 1));
  }
  for (const d of layer === "day" ? (plan.serverless?.deployments ?? []) : []) {
    if (d.minReplicas > 0) lines.push(line("day", `serverless ${d.name}: ${d.minReplicas} × ${d.gpus > 1 ? `${d.gpus} ` : ""}${d.gpu} ${d.spot ? "spot" : "on-demand"}`, replicaHourly(book, d) * d.minReplicas, 1));
  }
  if (layer === "day" && plan.scratch?.lifetime === "day" && !plan.serverless) lines.push(line("day", `scratch ${plan.scratch.sizeGb} GB`, volumeHourly(book, "NVMe", plan.scratch.sizeGb), 1));
  if (layer === "month" && plan.sfsGb) lines.push(line("month", `SFS ${plan.sfsGb} GB`, volumeHourly(book, "NVMe_Shared", plan.sfsGb), 1));
  if (layer === "month" && plan.scratch?.lifetime === "month") lines.push(line("month", `scratch ${plan.scratch.sizeGb} GB`, volumeHourly(book, "NVMe", plan.scratch.sizeGb), 1));
  if (layer === "idle") {
    lines.push(line("idle", "mello (VPS)", external.melloPerMonth / HOURS_PER_MONTH, 1));
    lines.push(line("idle", "R2 storage", external.r2PerMonth / HOURS_PER_MONTH, 1));
  }
  return lines;
}

/** The period's forecast, line by line: day lines bill only on workshop days, the rest all period. */
export function periodForecast(plan: PhasePlan, book: PriceBook, external: ExternalCosts, s: Schedule): CostLine[] {
  const dayHours = s.workshopDays * s.hoursPerDay;
  const lines: CostLine[] = [
    ...layerHourlyLines("idle", plan, book, external).map((l) => line(l.layer, l.item, l.perHour, s.periodHours)),
    ...layerHourlyLines("month", plan, book, external).map((l) => line(l.layer, l.item, l.perHour, s.periodHours)),
    ...layerHourlyLines("day", { ...plan, serverless: undefined }, book, external).map((l) => line(l.layer, `${l.item} × ${s.workshopDays} d × ${s.hoursPerDay} h`, l.perHour, dayHours)),
    ...(plan.serverless ? serverlessForecast(plan.serverless, book, s) : []),
  ];
  const scratch = plan.scratch;
  if (scratch?.lifetime === "day" && !scratch.deletePermanently && s.trashHours > 0 && s.workshopDays > 0) {
    // Each night's scratch is its own volume and bills on in the trash for the full retention.
    const trashHours = s.workshopDays * s.trashHours;
    lines.push(line("day", `scratch ${scratch.sizeGb} GB in trash (${s.trashHours} h after each day)`, volumeHourly(book, "NVMe", scratch.sizeGb), trashHours));
  }
  return lines;
}

/** Serverless day lines: minimum replicas over the workshop hours plus the prewarm, and the burst estimate. */
export function serverlessForecast(plan: ServerlessPlan, book: PriceBook, s: Pick<Schedule, "workshopDays" | "hoursPerDay">): CostLine[] {
  const hoursPerDay = s.hoursPerDay + plan.prewarmMinutes / 60;
  const lines = plan.deployments
    .filter((d) => d.minReplicas > 0)
    .map((d) => line("day", `serverless ${d.name}: ${d.minReplicas} replica(s) × ${s.workshopDays} d × ${+hoursPerDay.toFixed(2)} h${plan.prewarmMinutes ? ` (incl. ${plan.prewarmMinutes} min prewarm)` : ""}`, replicaHourly(book, d) * d.minReplicas, s.workshopDays * hoursPerDay));
  const first = plan.deployments[0];
  if (first && plan.burstReplicaHours > 0) {
    lines.push(line("day", `serverless burst estimate: ${plan.burstReplicaHours} replica-h × ${s.workshopDays} d at ${first.name}`, replicaHourly(book, first), s.workshopDays * plan.burstReplicaHours));
  }
  return lines;
}

/** The same environment with the instance never switched off: the comparison the phases are for. */
export function alwaysOnForecast(plan: PhasePlan, book: PriceBook, external: ExternalCosts, s: Schedule): CostLine[] {
  const kept: PhasePlan = { ...plan, scratch: plan.scratch ? { ...plan.scratch, lifetime: "month" } : undefined };
  return periodForecast(kept, book, external, { ...s, workshopDays: 1, hoursPerDay: s.periodHours });
}

export function sumCost(lines: CostLine[], layer?: Layer): number {
  return lines.filter((l) => !layer || l.layer === layer).reduce((sum, l) => sum + l.cost, 0);
}

export function sumPerHour(lines: CostLine[], layer?: Layer): number {
  return lines.filter((l) => !layer || l.layer === layer).reduce((sum, l) => sum + l.perHour, 0);
}

// ---------------------------------------------------------------- cost to date

/** A resource billing now, with the moment it started billing. */
export interface BilledResource {
  layer: Layer;
  kind: "instance" | "volume";
  id: string;
  item: string;
  createdAt: string;
  perHour: number;
}

export interface ToDateLine extends BilledResource {
  hours: number;
  cost: number;
}

export function costToDate(resources: BilledResource[], now: Date): ToDateLine[] {
  return resources.map((r) => {
    const hours = Math.max(0, (now.getTime() - Date.parse(r.createdAt)) / 3_600_000);
    return { ...r, hours, cost: hours * r.perHour };
  });
}

interface InstanceLike {
  id: string;
  instance_type: string;
  is_spot?: boolean;
  location?: string;
  hostname?: string;
  created_at: string;
  price_per_hour?: number;
}

interface VolumeLike {
  id: string;
  name?: string;
  type: string;
  size: number;
  created_at: string;
  is_os_volume?: boolean;
  monthly_price?: number;
}

/** The catalogue's whole-instance price; the instance's own field is the fallback (its meaning is disputed, verda-api.md §11.1). */
export function instanceResource(layer: Layer, i: InstanceLike, book: PriceBook): BilledResource {
  const known = book.instanceTypes[i.instance_type];
  const perHour = known ? (i.is_spot ? known.spot : known.onDemand) : Number(i.price_per_hour ?? 0);
  return { layer, kind: "instance", id: i.id, item: `instance ${i.hostname ?? i.id} (${i.instance_type}${i.is_spot ? ", spot" : ""})`, createdAt: i.created_at, perHour };
}

/** Verda's own monthly_price when it gives one, else the price book. */
export function volumeResource(layer: Layer, v: VolumeLike, book: PriceBook): BilledResource {
  const monthly = typeof v.monthly_price === "number" ? v.monthly_price : (book.volumeTypes[v.type] ?? 0) * v.size;
  const what = v.is_os_volume ? "OS volume" : v.type.includes("Shared") ? "SFS" : "volume";
  return { layer, kind: "volume", id: v.id, item: `${what} ${v.name ?? v.id} (${v.size} GB)`, createdAt: v.created_at, perHour: monthly / HOURS_PER_MONTH };
}
