// Price arithmetic: a price book from Verda's catalogue, hourly prices of instances and volumes.
import { HOURS_PER_MONTH, type Currency, type Placement, type PriceBook } from "./types";
import type { InstanceTypePrice, MoneyApi, VolumeTypePrice } from "./verda-reads";

function num(value: string | number | undefined): number {
  const n = typeof value === "number" ? value : Number(value);
  return Number.isFinite(n) ? n : NaN;
}

export function priceBookFrom(currency: Currency, types: InstanceTypePrice[], volumes: VolumeTypePrice[]): PriceBook {
  const book: PriceBook = { currency, instanceTypes: {}, volumeTypes: {} };
  for (const t of types) {
    book.instanceTypes[t.instance_type] = { onDemand: num(t.price_per_hour), spot: num(t.spot_price), gpus: t.gpu?.number_of_gpus ?? 0 };
  }
  // Serverless prices per GPU-hour by GPU model, from the 1-GPU instance types that quote them.
  for (const t of types) {
    if (!t.model || (t.gpu?.number_of_gpus ?? 0) !== 1 || t.serverless_price === undefined) continue;
    book.serverless ??= {};
    book.serverless[t.model] ??= { onDemand: num(t.serverless_price), spot: num(t.serverless_spot_price) };
  }
  for (const v of volumes) {
    // GO still accepts the legacy key monthly_per_gb (verda-api.md §9.2).
    book.volumeTypes[v.type] = num(v.price?.price_per_month_per_gb ?? v.price?.monthly_per_gb);
  }
  return book;
}

/** Reads both public price endpoints in the billing currency. */
export async function loadPriceBook(api: MoneyApi, currency: Currency): Promise<PriceBook> {
  const [types, volumes] = await Promise.all([api.instanceTypes(currency), api.volumeTypes(currency)]);
  return priceBookFrom(currency, types, volumes);
}

/** Whole-instance price per hour (Verda's instance-types figure is the total, verda-api.md §11.1). */
export function instanceHourly(book: PriceBook, p: Pick<Placement, "instanceType" | "spot">): number {
  const t = book.instanceTypes[p.instanceType];
  if (!t) throw new Error(`no price for instance type ${p.instanceType}: Verda's /instance-types does not list it`);
  const price = p.spot ? t.spot : t.onDemand;
  if (!Number.isFinite(price)) throw new Error(`Verda lists no ${p.spot ? "spot" : "on-demand"} price for ${p.instanceType}`);
  return price;
}

export function volumeMonthly(book: PriceBook, type: string, sizeGb: number): number {
  const perGb = book.volumeTypes[type];
  if (perGb === undefined || !Number.isFinite(perGb)) throw new Error(`no price for volume type ${type}: Verda's /volume-types does not list it`);
  return perGb * sizeGb;
}

export function volumeHourly(book: PriceBook, type: string, sizeGb: number): number {
  return volumeMonthly(book, type, sizeGb) / HOURS_PER_MONTH;
}

/** Hourly prices: up to 4 decimals (storage costs fractions of a cent per hour), at least 2. */
export function formatPerHour(amount: number, currency: Currency): string {
  const symbol = currency === "eur" ? "€" : "$";
  const fixed = Math.abs(amount).toFixed(4).replace(/(\.\d\d\d*?)0+$/, "$1");
  return `${amount < 0 ? "-" : ""}${symbol}${fixed}/h`;
}

/** Amounts for people: 2 decimals, 4 below one unit (hourly storage prices are fractions of a cent). */
export function formatMoney(amount: number, currency: Currency): string {
  const symbol = currency === "eur" ? "€" : "$";
  const digits = Math.abs(amount) < 1 && amount !== 0 ? 4 : 2;
  return `${amount < 0 ? "-" : ""}${symbol}${Math.abs(amount).toFixed(digits)}`;
}

/** One replica's price per hour: the GPU's serverless price (spot or on-demand) × GPUs per replica. */
export function replicaHourly(book: PriceBook, d: { gpu: string; gpus: number; spot: boolean }): number {
  const p = book.serverless?.[d.gpu];
  if (!p) {
    throw new Error(
      `no serverless price for ${d.gpu}: Verda's /instance-types quotes none for a 1-GPU ${d.gpu} type. ` +
        `Set it (per GPU-hour, billing currency): scripts/pulumi config set --path 'comfyume:serverless.prices.${d.gpu}.spot' <price> and '.onDemand' <price>`,
    );
  }
  const price = d.spot ? p.spot : p.onDemand;
  if (!Number.isFinite(price)) throw new Error(`no ${d.spot ? "spot" : "on-demand"} serverless price for ${d.gpu}: set comfyume:serverless.prices.${d.gpu}.${d.spot ? "spot" : "onDemand"}`);
  return price * d.gpus;
}
