// The status screen's pure parts: the watchdog's next cutoff across time zones and DST, manifest
// totals, colour only when asked, secrets redacted, attention rules.
import { describe, expect, it } from "vitest";
import { parseMoneySettings } from "../../infra/money/settings";
import { manifestTime, manifestTotals } from "../../infra/status/backups";
import { attentionOf, type StatusReport } from "../../infra/status/collect";
import { formatStatus, redact } from "../../infra/status/format";
import { watchdogStatus } from "../../infra/status/watchdog";

const watchdog = (w: Record<string, unknown>) => parseMoneySettings({ watchdog: { enabled: true, ...w } }).watchdog;

describe("watchdog cutoff", () => {
  it("is today's cutoff in the configured zone, or tomorrow's once passed; the window runs to the morning", () => {
    const w = watchdog({ cutoff: "22:00", morning: "06:00", timezone: "Europe/Berlin" });
    expect(watchdogStatus(w, new Date("2026-12-03T09:00:00Z"))).toMatchObject({ nextCutoff: "2026-12-03T21:00:00.000Z", inWindow: false });
    // 23:30 Berlin: in the window, 90 min past the cutoff; the next cutoff is tomorrow's.
    expect(watchdogStatus(w, new Date("2026-12-03T22:30:00Z"))).toMatchObject({ nextCutoff: "2026-12-04T21:00:00.000Z", inWindow: true, minutesPastCutoff: 90 });
    // 05:59 Berlin: still in the window; 06:00: out.
    expect(watchdogStatus(w, new Date("2026-12-04T04:59:00Z")).inWindow).toBe(true);
    expect(watchdogStatus(w, new Date("2026-12-04T05:00:00Z")).inWindow).toBe(false);
  });

  it("follows daylight saving time (Berlin is UTC+2 in summer) and plain UTC", () => {
    expect(watchdogStatus(watchdog({ cutoff: "22:00", timezone: "Europe/Berlin" }), new Date("2026-07-01T12:00:00Z")).nextCutoff).toBe("2026-07-01T20:00:00.000Z");
    // The day the clocks go back (25 October 2026): 22:00 is already UTC+1.
    expect(watchdogStatus(watchdog({ cutoff: "22:00", timezone: "Europe/Berlin" }), new Date("2026-10-25T12:00:00Z")).nextCutoff).toBe("2026-10-25T21:00:00.000Z");
    expect(watchdogStatus(watchdog({ cutoff: "18:30" }), new Date("2026-12-03T18:30:00Z")).nextCutoff).toBe("2026-12-04T18:30:00.000Z");
  });
});

describe("manifests", () => {
  it("the newest manifest's time comes from its dated name; totals from the size column; anything else is refused", () => {
    expect(manifestTime("2026-12-03T020304Z.tsv")?.toISOString()).toBe("2026-12-03T02:03:04.000Z");
    expect(manifestTime("notes.tsv")).toBeUndefined();
    const m = "# comfyume-manifest v2: sha256\tmd5\tsize\tpath\tkey\n" + "a\tb\t10\tx\tobjects/a\n" + "c\td\t32\ty\tobjects/c\n";
    expect(manifestTotals(m)).toEqual({ files: 2, bytes: 42 });
    expect(() => manifestTotals("<html>oops</html>")).toThrow(/not a comfyume manifest/);
    expect(() => manifestTotals("# comfyume-manifest v1: x\na\tb\tbig\tx\n")).toThrow(/damaged/);
  });
});

function report(over: Partial<StatusReport> = {}): StatusReport {
  const ok = <T>(value: T) => ({ ok: true as const, value, ms: 1 });
  return {
    generatedAt: "2026-12-03T09:00:00.000Z",
    stacks: ok([{ name: "idle", layer: "idle" as const, resourceCount: 3, updateInProgress: false, up: true, perHour: 0, state: ok({ resourceCount: 3 }) }]),
    verda: ok({ currency: "usd" as const, balance: 100, perHour: 0, resources: [] }),
    backups: ok([]),
    watchdog: ok(watchdogStatus(watchdog({}), new Date("2026-12-03T09:00:00Z"))),
    leftovers: ok({ items: [], sweepable: 0, perMonth: 0 }),
    attention: [],
    elapsedMs: 1234,
    ...over,
  };
}

describe("the screen", () => {
  it("colours only when asked (the script asks when stdout is a TTY and NO_COLOR is unset)", () => {
    expect(formatStatus(report(), { colour: true })).toContain("\u001b[");
    expect(formatStatus(report(), { colour: false })).not.toContain("\u001b[");
  });

  it("an unknown source reads 'unknown (<cause>; fix: ...)' and needs attention", () => {
    const r = report({ backups: { ok: false, cause: "connection refused", fix: "check the endpoint", ms: 5 } });
    r.attention = attentionOf(r);
    expect(r.attention).toEqual(["backups: unknown (connection refused; fix: check the endpoint)"]);
    const text = formatStatus(r, { colour: false });
    expect(text).toContain("backups: unknown (connection refused; fix: check the endpoint)");
    expect(text).toContain("needs attention (1):");
    expect(text).toMatch(/took 1\.2 s$/);
  });

  it("redaction replaces every secret the run held", () => {
    expect(redact("key=abcdef and abcdef again", ["abcdef"])).toBe("key=[secret] and [secret] again");
  });
});
