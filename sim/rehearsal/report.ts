// The rehearsal's table: each phase, wall time, time spent waiting on the simulated cloud,
// simulated cost from the simulator's billing meters, and what was verified.
export interface PhaseRecord {
  phase: string;
  wallMs: number;
  cloudWaitMs: number;
  cost: number;
  verified: string[];
  ok: boolean;
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export function phaseTable(rows: PhaseRecord[], currency: string): string {
  const header = ["phase", "wall", "waiting on cloud", `sim. cost (${currency})`, "verified"];
  const body = rows.map((r) => [
    `${r.ok ? "✔" : "✘"} ${r.phase}`,
    secs(r.wallMs),
    secs(r.cloudWaitMs),
    r.cost.toFixed(4),
    r.verified.join("; ") || "—",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join("  ");
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...body.map(line)].join("\n");
}
