// Preflight before a month or day stack is created or replaced: the credit balance covers the
// planned phase plus a margin, the instance type has capacity (falling back in config order),
// and the month's SFS exists and is big enough. Fails with the figures in the message.
import { describePlacement } from "./placement";
import { formatMoney, formatPerHour, instanceHourly, loadPriceBook, volumeHourly } from "./prices";
import { instanceResource, volumeResource, type ScratchPlan } from "./model";
import type { Balance, MoneyApi } from "./verda-reads";
import type { Placement, PriceBook } from "./types";
import { instanceNotLive } from "../verda/statuses";

export interface PreflightInput {
  stack: string;
  layer: "month" | "day";
  /** Day: placements to try, in order (see placementCandidates); the first with capacity wins. */
  candidates?: Placement[];
  /** Day: the placement of the instance the stack already has; kept as is (no capacity check). */
  current?: Placement;
  osVolumeGb?: number;
  /** The scratch volume this stack creates (day: lifetime day; month: lifetime month). */
  scratch?: ScratchPlan;
  /** Month: the SFS this stack creates. */
  newSfsGb?: number;
  /** Day: the month stack's SFS, by id (preferred) or name, and the least size it must have. */
  requiredSfs?: { id?: string; name?: string; minSizeGb: number };
  /** Hours the balance must carry this phase (day: one workshop day; month: the period). */
  coverHours: number;
  margin: { percent: number; amount: number };
}

export interface PlacementAttempt {
  placement: Placement;
  outcome: "chosen" | "no capacity" | "no price" | "other location than the SFS" | "kept (already deployed)";
  perHour?: number;
}

export interface PreflightResult {
  choice?: Placement & { perHour: number };
  attempts: PlacementAttempt[];
  balance: Balance;
  /** Per hour of what this stack adds. */
  plannedPerHour: number;
  /** Per hour of everything already billing on the account (instances, volumes, trash). */
  existingPerHour: number;
  coverHours: number;
  required: number;
  sfs?: { id: string; name: string; sizeGb: number; location: string };
  /** Lines for the log: the choice, its price, the balance figures. */
  report: string[];
}

export class PreflightError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PreflightError";
  }
}

async function findSfs(api: MoneyApi, want: NonNullable<PreflightInput["requiredSfs"]>, stack: string) {
  const volumes = await api.volumes();
  const sfs = volumes.find((v) => (want.id ? v.id === want.id : v.name === want.name));
  const label = want.id ? `id ${want.id}` : `name ${want.name}`;
  if (!sfs || sfs.status === "deleted") {
    throw new PreflightError(`${stack}: the month stack's SFS (${label}) does not exist at Verda; bring the month stack up first (scripts/pulumi up --stack <env>-month)`);
  }
  if (sfs.size < want.minSizeGb) {
    throw new PreflightError(`${stack}: the month stack's SFS ${sfs.name} is ${sfs.size} GB, smaller than the ${want.minSizeGb} GB needed; grow it (comfyume:sfs.sizeGb on the month stack, then up)`);
  }
  return { id: sfs.id, name: sfs.name, sizeGb: sfs.size, location: String(sfs.location) };
}

async function choosePlacement(api: MoneyApi, book: PriceBook, input: PreflightInput, sfsLocation: string | undefined) {
  const attempts: PlacementAttempt[] = [];
  if (input.current) {
    const perHour = instanceHourly(book, input.current);
    attempts.push({ placement: input.current, outcome: "kept (already deployed)", perHour });
    return { choice: { ...input.current, perHour }, attempts };
  }
  for (const p of input.candidates ?? []) {
    if (sfsLocation && p.location !== sfsLocation) {
      attempts.push({ placement: p, outcome: "other location than the SFS" });
      continue;
    }
    let perHour: number;
    try {
      perHour = instanceHourly(book, p);
    } catch {
      attempts.push({ placement: p, outcome: "no price" });
      continue;
    }
    if (!(await api.isAvailable(p))) {
      attempts.push({ placement: p, outcome: "no capacity", perHour });
      continue;
    }
    attempts.push({ placement: p, outcome: "chosen", perHour });
    return { choice: { ...p, perHour }, attempts };
  }
  return { choice: undefined, attempts };
}

/** Everything billing on the account now: it keeps billing while the new phase runs. */
async function existingBurn(api: MoneyApi, book: PriceBook): Promise<number> {
  const [instances, volumes, trash] = await Promise.all([api.instances(), api.volumes(), api.trash()]);
  const live = instances.filter((i) => !instanceNotLive(i.status));
  return [
    ...live.map((i) => instanceResource("day", i, book).perHour),
    ...[...volumes, ...trash].map((v) => volumeResource("month", v, book).perHour),
  ].reduce((a, b) => a + b, 0);
}

export async function preflight(api: MoneyApi, input: PreflightInput): Promise<PreflightResult> {
  const balance = await api.balance();
  const book = await loadPriceBook(api, balance.currency);
  const money = (n: number) => formatMoney(n, balance.currency);
  const rate = (n: number) => formatPerHour(n, balance.currency);

  const sfs = input.requiredSfs ? await findSfs(api, input.requiredSfs, input.stack) : undefined;
  const { choice, attempts } = input.layer === "day" ? await choosePlacement(api, book, input, sfs?.location) : { choice: undefined, attempts: [] };
  const tried = attempts.map((a) => `${describePlacement(a.placement)}: ${a.outcome}${a.perHour !== undefined ? ` (${rate(a.perHour)})` : ""}`);
  if (input.layer === "day" && !choice) {
    throw new PreflightError(`${input.stack}: no instance capacity for any configured placement; tried:\n  - ${tried.join("\n  - ")}\nAdd fallbacks (comfyume:capacity.fallbacks) or try again later.`);
  }

  let plannedPerHour = choice?.perHour ?? 0;
  if (input.layer === "day" && input.osVolumeGb) plannedPerHour += volumeHourly(book, "NVMe", input.osVolumeGb);
  if (input.scratch) plannedPerHour += volumeHourly(book, "NVMe", input.scratch.sizeGb);
  if (input.newSfsGb) plannedPerHour += volumeHourly(book, "NVMe_Shared", input.newSfsGb);
  const existingPerHour = await existingBurn(api, book);
  const planned = (plannedPerHour + existingPerHour) * input.coverHours;
  const required = planned * (1 + input.margin.percent / 100) + input.margin.amount;

  const report = [
    ...(choice ? [`placement: ${describePlacement(choice)} at ${rate(choice.perHour)}${attempts.length > 1 ? ` (after ${attempts.length - 1} fallback step(s): ${tried.join("; ")})` : ""}`] : []),
    ...(sfs ? [`SFS ${sfs.name}: ${sfs.sizeGb} GB in ${sfs.location}`] : []),
    `balance ${money(balance.amount)} must cover ${money(required)}: this phase ${rate(plannedPerHour)} + already billing ${rate(existingPerHour)}, ` +
      `for ${input.coverHours} h, + ${input.margin.percent} % margin${input.margin.amount ? ` + ${money(input.margin.amount)}` : ""}`,
  ];
  if (balance.amount < required) {
    throw new PreflightError(
      `${input.stack}: insufficient Verda balance: ${money(balance.amount)} available, ${money(required)} needed ` +
        `(this phase ${rate(plannedPerHour)} + already billing ${rate(existingPerHour)}, × ${input.coverHours} h = ${money(planned)}, ` +
        `+ ${input.margin.percent} % margin${input.margin.amount ? ` + ${money(input.margin.amount)}` : ""}); short by ${money(required - balance.amount)}. ` +
        `Top up the balance in the Verda console, or lower the plan.` +
        (choice ? ` Chosen placement: ${describePlacement(choice)} at ${rate(choice.perHour)}.` : ""),
    );
  }
  return { choice, attempts, balance, plannedPerHour, existingPerHour, coverHours: input.coverHours, required, sfs, report };
}
