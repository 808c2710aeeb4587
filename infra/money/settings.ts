// Money settings: `comfyume:budget`, `comfyume:forecast`, `comfyume:capacity`, `comfyume:watchdog`.
// Schemas are built inside a function (like infra/config/schema.ts) so infra/config can spread
// them into buildSchemas() and nothing module-level is captured by serialized providers.
import { z } from "zod";
import { phaseOfStackName } from "../config/phase";

const number = (min: number) =>
  z.preprocess((v) => (typeof v === "string" && v.trim() !== "" && !Number.isNaN(Number(v)) ? Number(v) : v), z.number("must be a number").min(min, `must be at least ${min}`));
const bool = () => z.preprocess((v) => (v === "true" ? true : v === "false" ? false : v), z.boolean("must be true or false"));
const clock = () => z.string("must be a time HH:MM").regex(/^([01]\d|2[0-3]):[0-5]\d$/, "must be a 24-hour time such as 22:00");
const currency = () => z.enum(["usd", "eur"], "must be usd or eur");

export function moneySchemas() {
  const budget = z
    .strictObject({
      // The phase's budget for one period (a month), in the Verda account's currency. Unset: no guard.
      limit: number(0).optional(),
      warnAtPercent: number(1).default(80),
      // Emergencies only: lets `up` go ahead over budget; needs a reason, which is logged.
      override: bool().default(false),
      overrideReason: z.string().trim().optional(),
      // The credit balance must cover the planned phase plus this margin.
      balanceMarginPercent: number(0).default(25),
      balanceMarginAmount: number(0).default(0),
    })
    .refine((b) => !b.override || (b.overrideReason ?? "").length > 0, { message: "override needs overrideReason (why the budget may be exceeded)", path: ["overrideReason"] });

  const forecast = z.strictObject({
    workshopDays: number(0).default(8),
    hoursPerDay: number(0).default(10),
    // Verda prices volumes per month of 730 hours; a "month" here is the same 730 hours.
    periodHours: number(1).default(730),
    melloPerMonth: number(0).default(12.49),
    melloCurrency: currency().default("eur"),
    r2StoredGb: number(0).default(200),
    r2PerGbMonth: number(0).default(0.015),
    r2Currency: currency().default("usd"),
    // Conversion for mello/R2 figures in the other currency (approximate; only for the forecast).
    usdPerEur: number(0.01).default(1.08),
    // A volume deleted to trash keeps billing there for 96 h (verda-api.md §7.5; the simulator bills it).
    trashHours: number(0).default(96),
  });

  const placementOverride = z.strictObject({
    instanceType: z.string().trim().min(1).optional(),
    location: z.string().regex(/^[A-Z]{3}-\d{2}$/, "must be a Verda location code such as FIN-01").optional(),
    spot: bool().optional(),
  });

  const capacity = z.strictObject({
    // Tried in order when the configured type/location/spot has no capacity; each entry overrides fields of gpu.*.
    fallbacks: z.array(placementOverride).default([]),
    // A spot request falls back to the same type on demand before any configured fallback.
    spotToOnDemand: bool().default(true),
  });

  const watchdog = z.strictObject({
    enabled: bool().default(false),
    cutoff: clock().default("22:00"),
    // The cutoff window ends in the morning, so a stack forgotten past midnight is still caught.
    morning: clock().default("06:00"),
    timezone: z.string().trim().min(1).default("UTC"),
    // Long enough not to fire during a lecture or lunch; 0 turns the idle rule off.
    idleMinutes: number(0).default(180),
    cutoffGraceMinutes: number(0).default(30),
    intervalMinutes: number(1).default(5),
    queueKey: z.string().trim().min(1).default("comfyume:queue"),
    webhookUrl: z.url("must be an http(s) URL, e.g. https://ntfy.sh/<topic>").optional(),
    // The day stack it tears down: any environment's (`prod-day`, `rehearsal-workshop-day`), never a month stack.
    dayStack: z
      .string()
      .trim()
      .min(1)
      .refine((v) => phaseOfStackName(v)?.endsWith("-day") === true, {
        error: (issue) => `'${String(issue.input)}' is not a day stack: name the <env>-day stack the watchdog tears down (e.g. prod-day, workshop-day)`,
      })
      .default("workshop-day"),
    checkoutDir: z.string().regex(/^\//, "must be an absolute path").default("/opt/comfyume-infra"),
    teardownCommand: z.string().trim().min(1).optional(),
    // The day stack output that shows it bills: instanceId, or serverlessDeployments when inference = serverless
    // (its teardown, the same day-stack destroy, returns the deployments to zero replicas).
    activeOutput: z.enum(["instanceId", "serverlessDeployments"], "must be instanceId (a GPU instance) or serverlessDeployments (inference = serverless)").default("instanceId"),
  });

  return { budget, forecast, capacity, watchdog };
}

type Schemas = ReturnType<typeof moneySchemas>;
export type BudgetSettings = z.output<Schemas["budget"]>;
export type ForecastSettings = z.output<Schemas["forecast"]>;
export type CapacitySettings = z.output<Schemas["capacity"]>;
export type WatchdogSettings = z.output<Schemas["watchdog"]>;
export interface MoneySettings {
  budget: BudgetSettings;
  forecast: ForecastSettings;
  capacity: CapacitySettings;
  watchdog: WatchdogSettings;
}
export const MONEY_KEYS = ["budget", "forecast", "capacity", "watchdog"] as const;

/** Parses the four settings (absent ones take their defaults); throws one error naming every bad key. */
export function parseMoneySettings(raw: Partial<Record<(typeof MONEY_KEYS)[number], unknown>>): MoneySettings {
  const schemas = moneySchemas();
  const problems: string[] = [];
  const out: Record<string, unknown> = {};
  for (const key of MONEY_KEYS) {
    const result = (schemas[key] as z.ZodType).safeParse(raw[key] ?? {});
    if (result.success) out[key] = result.data;
    else for (const issue of result.error.issues) problems.push(`comfyume:${[key, ...issue.path.map(String)].join(".")}: ${issue.message}`);
  }
  if (problems.length > 0) throw new Error(`money settings: ${problems.join("; ")}`);
  return out as unknown as MoneySettings;
}
