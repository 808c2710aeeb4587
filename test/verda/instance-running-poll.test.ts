// The instance's create waits for `running` by polling GET /instances/{id}. Each second between the
// instance turning running and the poll that sees it is a second of day-up (and of GPU billing before
// anything runs on it). The poll must notice within 1.5 s at any point of a provisioning
// that may take minutes, and stay well inside Verda's 60 requests/min per path (docs/verda-api.md §8.2).
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { instanceRunningPoll } from "../../infra/providers/instance";
import { pollUntil } from "../../infra/providers/shared";

describe("waiting for an instance to reach running", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  /** Simulated time from the first poll until the poll that saw `running`, and the polls per minute at most. */
  async function waitFor(runningAfterMs: number, pollIntervalMs: number) {
    const start = Date.now();
    const calls: number[] = [];
    const observe = async () => {
      calls.push(Date.now() - start);
      return Date.now() - start >= runningAfterMs ? "running" : "provisioning";
    };
    const waiting = pollUntil(observe, (s) => s === "running", (s) => s, instanceRunningPoll(pollIntervalMs, 15 * 60_000, "instance i"));
    await vi.runAllTimersAsync();
    await waiting;
    const seenAt = calls[calls.length - 1]!;
    const perMinute = Math.max(...calls.map((t) => calls.filter((u) => u >= t && u < t + 60_000).length));
    return { lagMs: seenAt - runningAfterMs, perMinute };
  }

  it.each([4_000, 4_100, 30_000, 90_000, 180_000, 600_000])("sees an instance that turned running after %i ms within 1.5 s, with at most 40 polls a minute (default settings)", async (after) => {
    const { lagMs, perMinute } = await waitFor(after, 5_000);
    expect(lagMs).toBeLessThanOrEqual(1_500);
    expect(perMinute).toBeLessThanOrEqual(40);
  });

  it("keeps a shorter configured interval (tests run the providers with VERDA_POLL_INTERVAL_MS=50)", async () => {
    const { lagMs } = await waitFor(1_000, 50);
    expect(lagMs).toBeLessThanOrEqual(50);
  });
});
