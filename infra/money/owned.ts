// Which Verda ids the stacks own: every UUID in a `pulumi stack export` (resource ids and
// outputs such as volumeId, osVolumeId, instanceId). Reading is injectable so tests need no CLI.
import { pulumiCli, type CliRun } from "./stack-io";
import { phaseOfStackName } from "../config/phase";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** UUID-shaped strings anywhere in the export's resources (ids, inputs, outputs). */
export function idsInStackExport(exported: unknown): Set<string> {
  const ids = new Set<string>();
  const resources = (exported as { deployment?: { resources?: unknown[] } })?.deployment?.resources ?? [];
  const walk = (v: unknown): void => {
    if (typeof v === "string") {
      if (UUID.test(v)) ids.add(v.toLowerCase());
    } else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === "object") Object.values(v).forEach(walk);
  };
  for (const r of resources) {
    const res = r as { id?: unknown; outputs?: unknown; inputs?: unknown };
    walk(res.id);
    walk(res.outputs);
    walk(res.inputs);
  }
  return ids;
}

/** The built-in environments' stacks (examples; the sweep reads every stack whose name names a phase). */
export const PHASE_STACKS = ["idle", "testing-month", "workshop-month", "testing-day", "workshop-day"];

export interface OwnedIds {
  ids: Set<string>;
  /** Stacks whose state was read. */
  stacks: string[];
  /** Stacks that exist but could not be read (a sweep must not delete while one is unreadable). */
  unreadable: string[];
}

/**
 * Reads the state of the given stacks that exist, via scripts/pulumi; by default of every stack whose
 * name names a phase (`idle`, `<env>-month`, `<env>-day` of any environment: prod-day, staging-month, ...).
 */
export function ownedIdsFromStacks(stacks: string[] | undefined = undefined, run: CliRun = pulumiCli): OwnedIds {
  const ls = run(["stack", "ls", "--json"]);
  if (ls.status !== 0) throw new Error(`cannot list stacks: ${ls.stderr.trim()}`);
  const listed = (JSON.parse(ls.stdout) as Array<{ name: string }>).map((s) => s.name.split("/").pop()!);
  const existing = new Set(listed);
  const wanted = stacks ? stacks.filter((s) => existing.has(s)) : listed.filter((s) => phaseOfStackName(s) !== undefined);
  const owned: OwnedIds = { ids: new Set(), stacks: [], unreadable: [] };
  for (const stack of wanted) {
    const r = run(["stack", "export", "--stack", stack]);
    if (r.status !== 0) {
      owned.unreadable.push(stack);
      continue;
    }
    for (const id of idsInStackExport(JSON.parse(r.stdout))) owned.ids.add(id);
    owned.stacks.push(stack);
  }
  return owned;
}
