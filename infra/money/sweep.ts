// Billed Verda leftovers no stack owns: stray instances, unowned volumes that are detached (an OS
// volume kept by an out-of-band delete, say), and volumes in trash. Listing is pure; deleting
// happens only when asked, never touches an owned id, and re-checks each target first.
import { formatMoney } from "./prices";
import { instanceResource, volumeResource } from "./model";
import { HOURS_PER_MONTH, type PriceBook } from "./types";
import type { Instance, Volume } from "../verda/types";
import type { VerdaClient } from "../verda/client";
import { instanceGone } from "../verda/statuses";

export type LeftoverKind = "stray instance" | "detached OS volume" | "detached volume" | "unowned SFS" | "volume in trash";

export interface Leftover {
  kind: LeftoverKind;
  id: string;
  name: string;
  detail: string;
  createdAt: string;
  perHour: number;
  perMonth: number;
  /** The OS volume that goes with a stray instance. */
  osVolumeId?: string;
}


export function findLeftovers(args: { instances: Instance[]; volumes: Volume[]; trash: Volume[]; owned: Set<string>; book: PriceBook }): Leftover[] {
  const owned = (id: string | null | undefined) => !!id && args.owned.has(id.toLowerCase());
  const out: Leftover[] = [];
  const strays = args.instances.filter((i) => !owned(i.id) && !instanceGone(i.status));
  for (const i of strays) {
    const perHour = instanceResource("day", i, args.book).perHour;
    out.push({ kind: "stray instance", id: i.id, name: i.hostname, detail: `${i.instance_type}${i.is_spot ? " spot" : ""}, ${i.status}, ${i.location}`, createdAt: i.created_at, perHour, perMonth: perHour * HOURS_PER_MONTH, osVolumeId: i.os_volume_id ?? undefined });
  }
  const strayIds = new Set(strays.map((i) => i.id));
  for (const v of args.volumes) {
    if (owned(v.id)) continue;
    const attachedTo = (v.instance_id ?? undefined) as string | undefined;
    // Attached to an owned instance: the stack manages it through that instance. To a stray: listed with it.
    if (attachedTo && (owned(attachedTo) || strayIds.has(attachedTo))) continue;
    const shared = String(v.type).includes("Shared");
    if (!shared && attachedTo) continue;
    const kind: LeftoverKind = shared ? "unowned SFS" : v.is_os_volume ? "detached OS volume" : "detached volume";
    const perHour = volumeResource("month", v, args.book).perHour;
    out.push({ kind, id: v.id, name: v.name, detail: `${v.type} ${v.size} GB, ${v.status}, ${v.location}`, createdAt: v.created_at, perHour, perMonth: perHour * HOURS_PER_MONTH });
  }
  for (const v of args.trash) {
    if (owned(v.id)) continue;
    const perHour = volumeResource("month", v, args.book).perHour;
    out.push({ kind: "volume in trash", id: v.id, name: v.name, detail: `${v.type} ${v.size} GB, deleted ${v.deleted_at ?? "?"}`, createdAt: v.created_at, perHour, perMonth: perHour * HOURS_PER_MONTH });
  }
  return out;
}

export interface SweepAction {
  leftover: Leftover;
  action: "deleted" | "moved to trash" | "skipped" | "failed";
  note?: string;
}

/**
 * Removes the leftovers: stray instances with their OS volume, detached volumes (to trash, or
 * for good with `permanent`), trashed volumes only with `permanent`. An owned id is refused even
 * if a caller passes it.
 */
export async function removeLeftovers(client: VerdaClient, leftovers: Leftover[], opts: { owned: Set<string>; permanent: boolean }): Promise<SweepAction[]> {
  const actions: SweepAction[] = [];
  for (const l of leftovers) {
    if (opts.owned.has(l.id.toLowerCase())) {
      actions.push({ leftover: l, action: "skipped", note: "owned by a stack" });
      continue;
    }
    try {
      if (l.kind === "stray instance") {
        await client.instanceAction({ action: "delete", id: l.id, volume_ids: l.osVolumeId ? [l.osVolumeId] : [], delete_permanently: opts.permanent });
        actions.push({ leftover: l, action: opts.permanent ? "deleted" : "moved to trash", note: l.osVolumeId ? "with its OS volume" : undefined });
      } else if (l.kind === "volume in trash") {
        if (!opts.permanent) {
          actions.push({ leftover: l, action: "skipped", note: "in trash; --permanent deletes it for good" });
          continue;
        }
        await client.deleteVolume(l.id, true);
        actions.push({ leftover: l, action: "deleted" });
      } else {
        await client.deleteVolume(l.id, opts.permanent);
        actions.push({ leftover: l, action: opts.permanent ? "deleted" : "moved to trash" });
      }
    } catch (e) {
      actions.push({ leftover: l, action: "failed", note: e instanceof Error ? e.message : String(e) });
    }
  }
  return actions;
}

export function leftoversTotalPerMonth(leftovers: Leftover[]): number {
  return leftovers.reduce((s, l) => s + l.perMonth, 0);
}

export const leftoverMoney = (n: number, book: PriceBook) => formatMoney(n, book.currency);
