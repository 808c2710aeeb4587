// `rehearse --adopt`: the closing note's table of the adopted resources, and which API calls touched them.
import type { Exchange } from "../simulator/types";

export interface AdoptRow {
  resource: string;
  before: string;
  after: string;
  ok: boolean;
}

/** Calls that can change something at Verda: not a read, not the login (POST /oauth2/token). */
export const mutating = (e: Exchange) => e.method !== "GET" && !/\/oauth2\/token/.test(e.url);

/** The simulator's exchanges made since `mark` (a set of the exchanges seen then; the log is capped, so not an index). */
export function since(mark: Set<Exchange>, all: Exchange[]): Exchange[] {
  return all.filter((e) => !mark.has(e));
}

/**
 * Mutating calls (not GET) naming an adopted id after the out-of-band creation. A worker deployed with the
 * SFS in `existing_volumes` only names it (attached at the worker's creation, as every day): not a touch.
 */
export function touchedAdopted(exchanges: Exchange[], ids: { sfsId: string; appId: string }): string[] {
  return exchanges
    .filter(mutating)
    .filter((e) => {
      const text = `${e.url} ${e.requestBody}`;
      if (text.includes(ids.appId)) return true;
      if (!text.includes(ids.sfsId)) return false;
      return !(e.method === "POST" && /\/instances(\?|$)/.test(e.url));
    })
    .map((e) => `${e.method} ${e.url} (${e.status})`);
}

export function adoptTable(rows: AdoptRow[]): string {
  const header = ["resource", "before (out of band)", "after the day and the month were destroyed"];
  const body = rows.map((r) => [`${r.ok ? "✔" : "✘"} ${r.resource}`, r.before, r.after]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join("  ");
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...body.map(line)].join("\n");
}
