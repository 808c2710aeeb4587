// Markdown for one stack's preview: data at risk first, then the counts, policy violations, errors,
// and every change grouped by the component (parent) it belongs to.
import { parseUrn } from "../../policy/resources";
import type { ChangeKind, PlannedChange, PreviewData } from "./model";
import { atRisk } from "./risk";

export interface RenderOptions {
  stack: string;
  /** Output of the cost tool (`npm run cost -- --stack X --json`), when it ran. */
  cost?: unknown;
}

const KIND_ORDER: ChangeKind[] = ["delete", "replace", "update", "create", "other"];
const SUMMARY_ORDER = ["create", "update", "replace", "delete", "same"];
const SUMMARY_WORDS: Record<string, string> = { create: "to create", update: "to update", replace: "to replace", delete: "to delete", same: "unchanged" };

export const shortType = (type: string): string => type.replace(/^pulumi-nodejs:dynamic\//, "");
const nameOf = (urn: string): string => parseUrn(urn)?.name ?? urn;
const cell = (text: string): string => text.replace(/\|/g, "\\|").replace(/\s*\n\s*/g, " ");
const oneLine = (text: string): string => text.trim().replace(/\s*\n\s*/g, " — ");

function componentLabel(parent: string | undefined): string {
  const parsed = parent ? parseUrn(parent) : undefined;
  if (!parsed || parsed.type === "pulumi:pulumi:Stack") return "Stack (top level)";
  return `${parsed.type} \`${parsed.name}\``;
}

function summaryLine(counts: Record<string, number>): string {
  const keys = [...SUMMARY_ORDER.filter((k) => k in counts), ...Object.keys(counts).filter((k) => !SUMMARY_ORDER.includes(k)).sort()];
  if (keys.length === 0) return "no changes";
  return keys.map((k) => `${counts[k]} ${SUMMARY_WORDS[k] ?? k}`).join(" · ");
}

function changedText(change: PlannedChange): string {
  if (change.kind === "create" || change.kind === "delete") return "";
  return change.changedKeys.map((k) => `\`${k}\``).join(", ");
}

function atRiskSection(data: PreviewData): string[] {
  const risks = data.changes.map(atRisk).filter((r) => r !== undefined);
  if (risks.length === 0) return [];
  const lines = ["> [!WARNING]", "> **Data at risk** — these replacements and deletions lose data or touch protected resources:"];
  for (const r of risks.sort((a, b) => KIND_ORDER.indexOf(a.change.kind) - KIND_ORDER.indexOf(b.change.kind) || a.change.urn.localeCompare(b.change.urn))) {
    const changed = changedText(r.change);
    lines.push(`> - **${r.change.kind.toUpperCase()}** \`${nameOf(r.change.urn)}\` (${shortType(r.change.type)}) — ${r.why}${changed ? `; because of ${changed}` : ""}`);
  }
  return [...lines, ""];
}

function policySection(data: PreviewData): string[] {
  if (data.policyViolations.length === 0) return [];
  const lines = ["#### Policy violations", ""];
  for (const v of data.policyViolations) {
    const mark = v.level === "mandatory" ? "❌" : "⚠️";
    const where = v.urn ? ` on \`${nameOf(v.urn)}\`` : "";
    lines.push(`- ${mark} **${v.policy}** (${v.level})${where}: ${oneLine(v.message)}`);
  }
  return [...lines, ""];
}

function diagnosticSection(data: PreviewData): string[] {
  if (data.diagnostics.length === 0) return [];
  const lines = ["#### Errors and warnings", ""];
  for (const d of data.diagnostics) lines.push(`- **${d.severity}**${d.urn ? ` (\`${nameOf(d.urn)}\`)` : ""}: ${oneLine(d.message)}`);
  return [...lines, ""];
}

function changesSection(data: PreviewData): string[] {
  if (data.changes.length === 0) return [];
  const groups = new Map<string, PlannedChange[]>();
  for (const c of data.changes) {
    const label = componentLabel(c.parent);
    groups.set(label, [...(groups.get(label) ?? []), c]);
  }
  const lines = ["#### Changes by component", ""];
  for (const label of [...groups.keys()].sort()) {
    lines.push(`**${label}**`, "", "| Change | Resource | Type | Changed |", "|---|---|---|---|");
    const sorted = groups.get(label)!.sort((a, b) => KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind) || nameOf(a.urn).localeCompare(nameOf(b.urn)));
    for (const c of sorted) {
      const op = c.kind === "other" ? c.op : c.kind;
      lines.push(`| ${op}${c.protect ? " 🔒" : ""} | \`${cell(nameOf(c.urn))}\` | \`${cell(shortType(c.type))}\` | ${cell(changedText(c))} |`);
    }
    lines.push("");
  }
  return lines;
}

function costSection(cost: unknown): string[] {
  if (cost === undefined) return [];
  return ["<details><summary>Cost delta (npm run cost)</summary>", "", "```json", JSON.stringify(cost, null, 2), "```", "", "</details>", ""];
}

export function renderSummary(data: PreviewData, options: RenderOptions): string {
  const lines = [`### \`${options.stack}\``, ""];
  lines.push(...atRiskSection(data));
  lines.push(`**Changes:** ${summaryLine(data.changeSummary)}`, "");
  lines.push(...policySection(data));
  if (!data.policyEventsSeen) lines.push("_Policy results are not in this input (the `--json` digest omits them); run with PULUMI_ENABLE_STREAMING_JSON_PREVIEW=true to include them._", "");
  lines.push(...diagnosticSection(data));
  lines.push(...changesSection(data));
  lines.push(...costSection(options.cost));
  return `${lines.join("\n").trimEnd()}\n`;
}
