// mello and R2 figures from config, converted into the Verda billing currency.
import type { ForecastSettings } from "./settings";
import type { Currency, ExternalCosts } from "./types";

export function convert(amount: number, from: Currency, to: Currency, usdPerEur: number): number {
  if (from === to) return amount;
  return from === "eur" ? amount * usdPerEur : amount / usdPerEur;
}

export function externalCosts(f: ForecastSettings, currency: Currency): ExternalCosts {
  return {
    melloPerMonth: convert(f.melloPerMonth, f.melloCurrency, currency, f.usdPerEur),
    r2PerMonth: convert(f.r2StoredGb * f.r2PerGbMonth, f.r2Currency, currency, f.usdPerEur),
  };
}
