// The fault table: one row per fault, and the safety invariants each row must hold:
//   - no user file lost (every file verified in R2 or still, byte for byte, on its volume);
//   - no instance deleted without a verified backup of every user file;
//   - a failure's message names the cause (tested on the error lines, not the whole log);
//   - once the fault is cleared, the retry converges.
import type { FileEvidence } from "./evidence";

export type Phase = "nightly destroy" | "morning up";

export interface Attempt {
  /** The command's exit status was 0. */
  ok: boolean;
  /** The most specific error line ("" when ok). */
  keyLine: string;
  /** Every error line of the command's output (what a cause is looked for in). */
  errorLines: string[];
  /** The day's instance was deleted by this attempt. */
  deletedInstance: boolean;
  files: FileEvidence[];
  /** Files that were on their volume before this attempt and are not after (a wipe, a reformat). */
  vanished: string[];
  /** The scripts' own failure lines from the hosts' logs (context for the reader, never judged). */
  hostLog: string[];
  ms: number;
}

export interface FaultRow {
  fault: string;
  phase: Phase;
  faulted?: Attempt;
  retry?: Attempt;
  /** Setup failures, rescue results and other facts worth a line. */
  notes: string[];
  problems: string[];
  ms: number;
}

const count = (n: number, what: string) => `${n} ${what}${n === 1 ? "" : "s"}`;

function fileProblems(label: string, a: Attempt): string[] {
  const out: string[] = [];
  // The volume is the users' working copy: a file that was on it must stay, even if R2 has it.
  if (a.vanished.length) out.push(`${label}: ${count(a.vanished.length, "user file")} gone from the volume (${a.vanished.slice(0, 3).join(", ")})`);
  const lost = a.files.filter((e) => !e.inR2 && !e.onVolume);
  if (lost.length) out.push(`${label}: ${count(lost.length, "user file")} LOST (${lost.slice(0, 3).map((e) => `${e.file.host}:${e.file.path}`).join(", ")})`);
  const unbacked = a.files.filter((e) => !e.inR2);
  if (a.deletedInstance && unbacked.length) {
    out.push(`${label}: instance deleted without a verified backup of ${count(unbacked.length, "file")} (${unbacked.slice(0, 3).map((e) => e.file.path).join(", ")})`);
  }
  return out;
}

/** The invariants of one row; `cause` must match the faulted attempt's error lines when it failed. */
export function judge(row: FaultRow, cause: RegExp, forbidden?: RegExp): string[] {
  const problems: string[] = [];
  if (!row.faulted) return ["the fault was never injected (setup failed)"];
  problems.push(...fileProblems("under the fault", row.faulted));
  const said = row.faulted.errorLines.join("\n");
  if (!row.faulted.ok && !cause.test(said)) {
    problems.push(`the error does not name the cause (${cause}); key line: ${row.faulted.keyLine || "(none)"}`);
  }
  const advice = forbidden?.exec(said);
  if (advice) problems.push(`the error advises "${advice[0]}": ${said.split("\n").find((l) => forbidden!.test(l))?.slice(0, 200)}`);
  if (row.retry) {
    problems.push(...fileProblems("retry", row.retry));
    if (!row.retry.ok) problems.push(`no convergence after clearing the fault: ${row.retry.keyLine || "(no error line)"}`);
  }
  return problems;
}

function outcome(row: FaultRow): string {
  const f = row.faulted;
  if (!f) return `not run: ${row.notes.join("; ")}`;
  let text = f.ok ? "converged under the fault" : `error: ${f.keyLine || "(no error line)"}`;
  if (row.retry) text += row.retry.ok ? " → retry converged" : ` → retry FAILED: ${row.retry.keyLine || "(no error line)"}`;
  return text;
}

function filesCell(a: Attempt | undefined): string {
  if (!a) return "—";
  const lost = a.files.filter((e) => !e.inR2 && !e.onVolume).length;
  const r2 = a.files.filter((e) => e.inR2).length;
  const volumeOnly = a.files.length - r2 - lost;
  const parts = [`${r2}/${a.files.length} in R2`];
  if (volumeOnly) parts.push(`${volumeOnly} only on volume`);
  if (lost) parts.push(`${lost} LOST`);
  return parts.join(", ");
}

const shorten = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

export function faultTable(rows: FaultRow[]): string {
  const header = ["", "fault", "phase", "instance deleted?", "user files (after fault / after retry)", "outcome"];
  const body = rows.map((r) => [
    r.problems.length ? "FAIL" : "ok",
    r.fault,
    r.phase,
    r.faulted ? (r.faulted.deletedInstance ? "yes" : "no") + (r.retry?.deletedInstance ? " (retry: yes)" : "") : "—",
    `${filesCell(r.faulted)} / ${filesCell(r.retry)}`,
    shorten(outcome(r), 160),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join(" | ");
  const details = rows
    .filter((r) => r.problems.length || r.notes.length || r.faulted?.hostLog.length || r.retry?.hostLog.length)
    .flatMap((r) => [
      `${r.fault}:`,
      ...r.problems.map((p) => `  FAIL ${p}`),
      ...(r.faulted?.hostLog ?? []).map((l) => `  host log under the fault: ${shorten(l, 220)}`),
      ...(r.retry?.hostLog ?? []).map((l) => `  host log on retry: ${shorten(l, 220)}`),
      ...r.notes.map((n) => `  note: ${n}`),
    ]);
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...body.map(line), "", ...details].join("\n");
}

/** Error lines of a Pulumi run's output: the scripts' own failures first, then the engine's. */
export function errorLines(output: string): { keyLine: string; lines: string[] } {
  const all = output.split("\n").map((l) => l.trim()).filter(Boolean);
  const generic = /^error: (update|destroy|preview) failed$|^error: an error occurred/i;
  const script = all.filter((l) => /FAILED in step|ERROR:|\bdie\b/.test(l));
  const engine = all.filter((l) => /\berror:/i.test(l) && !generic.test(l));
  const lines = [...new Set([...script, ...engine])];
  return { keyLine: shorten(lines[0] ?? "", 200), lines };
}
