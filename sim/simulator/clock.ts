// Simulated clock for billing: runs `speed` times faster than real time and can be advanced
// by hand (POST /_sim/clock), so cost tooling can be checked without waiting hours.
export class SimClock {
  private readonly realStart = Date.now();
  private readonly simStart: number;
  private offsetMs = 0;

  constructor(
    private speed: number,
    startTime?: string | number,
  ) {
    this.simStart = startTime === undefined ? Date.now() : new Date(startTime).getTime();
    if (!Number.isFinite(this.simStart)) throw new Error(`invalid simulator start time: ${String(startTime)}`);
    if (!(speed > 0)) throw new Error(`simulator speed must be > 0, got ${speed}`);
  }

  /** Simulated epoch milliseconds. */
  now(): number {
    return this.simStart + this.offsetMs + (Date.now() - this.realStart) * this.speed;
  }

  iso(): string {
    return new Date(this.now()).toISOString();
  }

  advance(simMs: number): void {
    if (!(simMs >= 0)) throw new Error("can only advance the clock forward");
    this.offsetMs += simMs;
  }

  getSpeed(): number {
    return this.speed;
  }
}
