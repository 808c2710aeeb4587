// Shared shapes of the money module. Amounts are plain numbers in one billing currency
// (the Verda account's, from GET /balance); conversions happen once, at the edges.

export type Currency = "usd" | "eur";

/** Verda's hourly volume price is the monthly price / 730 (verda-api.md §9.2, §11.1). */
export const HOURS_PER_MONTH = 730;

/** Prices read from Verda's public price endpoints, in one currency. */
export interface PriceBook {
  currency: Currency;
  /** instance type -> whole-instance prices per hour. */
  instanceTypes: Record<string, { onDemand: number; spot: number; gpus: number }>;
  /** volume type (NVMe, NVMe_Shared, ...) -> price per GB-month. */
  volumeTypes: Record<string, number>;
  /** Serverless compute name (H200, B300, ...) -> price per GPU-hour of one replica (infra/money/serverless.ts). */
  serverless?: Record<string, { onDemand: number; spot: number }>;
}

/** Costs that do not come from Verda (config, or the defaults in settings.ts), already in the billing currency. */
export interface ExternalCosts {
  melloPerMonth: number;
  r2PerMonth: number;
}

/** One instance type at one location, on spot or on demand. */
export interface Placement {
  instanceType: string;
  location: string;
  spot: boolean;
}

export type Layer = "idle" | "month" | "day";

/** One priced line of a forecast or a phase price. */
export interface CostLine {
  layer: Layer;
  item: string;
  perHour: number;
  /** Hours billed in the period. */
  hours: number;
  cost: number;
}
