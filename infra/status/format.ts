// The status screen as text: one table of layers per environment, what Verda bills now, the
// backups, the watchdog and the leftovers, then what needs attention and how long it took.
import { formatMoney, formatPerHour } from "../money/prices";
import { renderTable } from "../money/table";
import type { Currency } from "../money/types";
import type { StatusReport } from "./collect";
import { unknownText, type Probe } from "./probe";

export interface Style {
  colour: boolean;
}

const ANSI = { red: "31", green: "32", yellow: "33", dim: "2", bold: "1" } as const;
const paint = (s: Style, c: keyof typeof ANSI, text: string) => (s.colour ? `\u001b[${ANSI[c]}m${text}\u001b[0m` : text);

/** Colours whole table rows after alignment (escape codes take no width). */
function paintRows(s: Style, table: string, colourOf: (line: string, index: number) => keyof typeof ANSI | undefined): string {
  return table
    .split("\n")
    .map((line, i) => (i === 0 ? paint(s, "bold", line) : i === 1 ? line : ((c) => (c ? paint(s, c, line) : line))(colourOf(line, i - 2))))
    .join("\n");
}

const age = (hours: number) => (hours < 1 ? `${Math.round(hours * 60)} min` : hours < 48 ? `${hours.toFixed(1)} h` : `${(hours / 24).toFixed(1)} d`);
export function bytesText(n: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${i === 0 ? n.toFixed(0) : n.toFixed(1)} ${units[i]}`;
}
const when = (iso: string) => iso.replace(/:\d\d(\.\d+)?Z$/, "Z").replace("T", " ");
const or = <T>(p: Probe<T>, show: (v: T) => string) => (p.ok ? show(p.value) : unknownText(p));

function stacksSection(r: StatusReport, s: Style, cur: Currency): string {
  if (!r.stacks.ok) return `layers: ${unknownText(r.stacks)}`;
  if (r.stacks.value.length === 0) return "layers: no phase stacks in this backend (scripts/pulumi stack ls)";
  const rows = r.stacks.value.map((row) => {
    const cost = row.cost;
    const costUnknown = cost && !cost.ok ? (r.verda.ok ? unknownText(cost) : "unknown (Verda, below)") : "-";
    const budget = cost?.ok ? (cost.value.budget.limit === undefined ? `${formatMoney(cost.value.forecast, cur)} (no budget)` : `${formatMoney(cost.value.forecast, cur)} of ${formatMoney(cost.value.budget.limit, cur)} (${cost.value.budget.percentUsed!.toFixed(0)} %${cost.value.budget.verdict === "ok" ? "" : ` ${cost.value.budget.verdict.toUpperCase()}`})`) : costUnknown;
    return [
      row.environment ?? "(all)",
      row.layer,
      row.name,
      !row.state.ok ? unknownText(row.state) : row.updateInProgress ? "updating" : row.up ? "up" : "down",
      String(row.resourceCount),
      row.perHour === undefined ? "unknown" : row.perHour > 0 ? formatPerHour(row.perHour, cur) : "-",
      cost?.ok ? formatMoney(cost.value.toDate, cur) : "-",
      budget,
    ];
  });
  const table = renderTable(["environment", "layer", "stack", "state", "resources", "billing now", "cost so far (running)", "period forecast vs budget"], rows, [4, 5, 6]);
  return paintRows(s, table, (line, i) => (/unknown|OVER/.test(line) ? "red" : r.stacks.ok && r.stacks.value[i]?.up ? "green" : "dim"));
}

function verdaLine(r: StatusReport): string {
  if (!r.verda.ok) return `Verda billing now: ${unknownText(r.verda)}`;
  const v = r.verda.value;
  const n = (trash: boolean) => v.resources.filter((x) => x.inTrash === trash).length;
  return `Verda billing now: ${formatPerHour(v.perHour, v.currency)} (${formatMoney(v.perHour * 24, v.currency)} a day) for ${n(false)} resource(s)${n(true) ? ` and ${n(true)} in trash` : ""}; balance ${formatMoney(v.balance, v.currency)}`;
}

function backupsSection(r: StatusReport, s: Style): string {
  if (!r.backups.ok) return `backups: ${unknownText(r.backups)}`;
  const rows = r.backups.value.map(({ set, status }) =>
    status.ok
      ? status.value.last
        ? [set, when(status.value.last.at), age(status.value.last.ageHours), bytesText(status.value.last.bytes), String(status.value.last.files), status.value.last.where]
        : [set, "none yet", "-", "-", "-", `r2:${status.value.bucket}/${status.value.prefix}/`]
      : [set, unknownText(status), "", "", "", ""],
  );
  return paintRows(s, renderTable(["backup set", "last verified", "age", "size", "files", "where"], rows, [2, 3, 4]), (line) => (/unknown/.test(line) ? "red" : /none yet/.test(line) ? "yellow" : undefined));
}

function watchdogLine(r: StatusReport, now: Date): string {
  return `watchdog: ${or(r.watchdog, (w) => {
    if (!w.enabled) return "off (comfyume:watchdog.enabled is false on the idle stack)";
    const mins = Math.round((Date.parse(w.nextCutoff) - now.getTime()) / 60_000);
    const inText = mins >= 60 ? `${Math.floor(mins / 60)} h ${mins % 60} min` : `${mins} min`;
    return `next cutoff ${when(w.nextCutoff)} (${w.cutoff} ${w.timezone}, in ${inText}) tears down ${w.dayStack}${w.inWindow ? `; now in the cutoff window (until ${w.morning})` : ""}; idle rule ${w.idleMinutes ? `${w.idleMinutes} min` : "off"}`;
  })}`;
}

function leftoversSection(r: StatusReport, s: Style, cur: Currency): string {
  if (!r.leftovers.ok) return `leftovers: ${unknownText(r.leftovers)}`;
  const l = r.leftovers.value;
  if (l.items.length === 0) return "leftovers: none (every billed Verda resource belongs to a stack)";
  const table = renderTable(["leftover", "name", "id", "detail", "per month"], l.items.map((x) => [x.kind, x.name, x.id, x.detail, formatMoney(x.perMonth, cur)]), [4]);
  const note = `${l.items.length} leftover(s) billing ${formatMoney(l.perMonth, cur)} a month; npm run sweep -- --delete removes ${l.sweepable}${l.items.length > l.sweepable ? " (volumes in trash go with --permanent, or by themselves after 96 h)" : ""}`;
  return `${paintRows(s, table, (line) => (/volume in trash/.test(line) ? "yellow" : "red"))}\n${note}`;
}

export function formatStatus(r: StatusReport, style: Style): string {
  const cur: Currency = r.verda.ok ? r.verda.value.currency : "usd";
  const now = new Date(r.generatedAt);
  const head = paint(style, "bold", `comfyume status at ${when(r.generatedAt)}`);
  const attention = r.attention.length === 0 ? paint(style, "green", "nothing needs attention") : [paint(style, "red", `needs attention (${r.attention.length}):`), ...r.attention.map((a) => `  - ${a}`)].join("\n");
  return [head, "", stacksSection(r, style, cur), "", verdaLine(r), "", backupsSection(r, style), "", watchdogLine(r, now), "", leftoversSection(r, style, cur), "", attention, "", `took ${(r.elapsedMs / 1000).toFixed(1)} s`].join("\n");
}

/** Replaces every secret value this run held; the last guard before anything is printed. */
export function redact(text: string, secrets: string[]): string {
  return secrets.reduce((t, secret) => t.split(secret).join("[secret]"), text);
}
