// Billing meters: one per billable resource, accruing price_per_hour pro rata in simulated time
// while the resource bills. The balance is the starting credit minus everything accrued.
import type { SimClock } from "./clock";

const MS_PER_HOUR = 3_600_000;

/** What a meter bills: an instance, a volume, or one running replica of a container deployment. */
export type BilledResource = "instance" | "volume" | "replica";

export interface MeterView {
  resource_type: BilledResource;
  resource_id: string;
  description: string;
  price_per_hour: number;
  running: boolean;
  started_at: string;
  stopped_at: string | null;
  billed_hours: number;
  cost: number;
}

class Meter {
  accruedMs = 0;
  accruedCost = 0;
  runningSince: number | null = null;
  stoppedAt: number | null = null;

  constructor(
    readonly resourceType: BilledResource,
    readonly resourceId: string,
    public description: string,
    public pricePerHour: number,
    readonly startedAt: number,
  ) {}

  /** Moves the open segment into the accrued totals (at the current price). */
  close(now: number): void {
    if (this.runningSince === null) return;
    const ms = now - this.runningSince;
    this.accruedMs += ms;
    this.accruedCost += (this.pricePerHour * ms) / MS_PER_HOUR;
    this.runningSince = now;
  }

  billedMs(now: number): number {
    return this.accruedMs + (this.runningSince === null ? 0 : now - this.runningSince);
  }

  cost(now: number): number {
    const open = this.runningSince === null ? 0 : now - this.runningSince;
    return this.accruedCost + (this.pricePerHour * open) / MS_PER_HOUR;
  }
}

export class Billing {
  private meters = new Map<string, Meter>();
  private credit: number;

  constructor(
    private readonly clock: SimClock,
    startingCredit: number,
    readonly currency: "usd" | "eur",
  ) {
    this.credit = startingCredit;
  }

  /** Starts (or resumes) billing a resource. */
  start(resourceType: BilledResource, resourceId: string, description: string, pricePerHour: number): void {
    const now = this.clock.now();
    let meter = this.meters.get(resourceId);
    if (!meter) {
      meter = new Meter(resourceType, resourceId, description, pricePerHour, now);
      this.meters.set(resourceId, meter);
    }
    if (meter.runningSince === null) {
      meter.runningSince = now;
      meter.stoppedAt = null;
    }
  }

  stop(resourceId: string): void {
    const meter = this.meters.get(resourceId);
    if (!meter || meter.runningSince === null) return;
    const now = this.clock.now();
    meter.close(now);
    meter.runningSince = null;
    meter.stoppedAt = now;
  }

  /** A price change (e.g. volume resize) applies from now on. */
  reprice(resourceId: string, pricePerHour: number, description?: string): void {
    const meter = this.meters.get(resourceId);
    if (!meter) return;
    meter.close(this.clock.now());
    meter.pricePerHour = pricePerHour;
    if (description) meter.description = description;
  }

  totalCost(): number {
    const now = this.clock.now();
    let sum = 0;
    for (const m of this.meters.values()) sum += m.cost(now);
    return sum;
  }

  /** Cost per hour of everything billing right now. */
  burnRatePerHour(): number {
    let sum = 0;
    for (const m of this.meters.values()) if (m.runningSince !== null) sum += m.pricePerHour;
    return sum;
  }

  balance(): number {
    return this.credit - this.totalCost();
  }

  addCredit(amount: number): void {
    this.credit += amount;
  }

  setBalance(amount: number): void {
    this.credit = amount + this.totalCost();
  }

  view(): MeterView[] {
    const now = this.clock.now();
    return [...this.meters.values()].map((m) => ({
      resource_type: m.resourceType,
      resource_id: m.resourceId,
      description: m.description,
      price_per_hour: m.pricePerHour,
      running: m.runningSince !== null,
      started_at: new Date(m.startedAt).toISOString(),
      stopped_at: m.stoppedAt === null ? null : new Date(m.stoppedAt).toISOString(),
      billed_hours: m.billedMs(now) / MS_PER_HOUR,
      cost: m.cost(now),
    }));
  }
}
