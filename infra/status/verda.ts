// What Verda bills right now, priced with the money module's price book, each resource with the
// stack that owns it (or none: then it is a leftover, as `npm run sweep` lists them).
import { findLeftovers, leftoversTotalPerMonth, type Leftover } from "../money/sweep";
import { instanceResource, volumeResource } from "../money/model";
import { loadPriceBook } from "../money/prices";
import { verdaForMoney, type Balance, type MoneyApi } from "../money/verda-reads";
import type { Instance, Volume } from "../verda/types";
import type { VerdaClient } from "../verda/client";
import type { VerdaClientOptions } from "../verda/http";
import type { Currency, PriceBook } from "../money/types";
import { instanceGone, volumeGone } from "../verda/statuses";

export interface BilledNow {
  id: string;
  item: string;
  perHour: number;
  /** The stack whose state holds the id; undefined for a leftover. */
  stack?: string;
  inTrash: boolean;
}

export interface VerdaNow {
  currency: Currency;
  balance: number;
  perHour: number;
  resources: BilledNow[];
  book: PriceBook;
  leftovers: Leftover[];
}


/** The money API with balance and prices read once per run (the cost reports ask for them again). */
export function memoizedApi(api: MoneyApi): MoneyApi {
  const once = new Map<string, Promise<unknown>>();
  const memo = <T>(key: string, read: () => Promise<T>) => {
    if (!once.has(key)) once.set(key, read());
    return once.get(key) as Promise<T>;
  };
  return {
    ...api,
    balance: () => memo("balance", () => api.balance()),
    instanceTypes: (c) => memo(`types-${c}`, () => api.instanceTypes(c)),
    volumeTypes: (c) => memo(`volumes-${c}`, () => api.volumeTypes(c)),
  };
}

/** A client and money API that give up quickly: a status screen must not hang on a sick API. */
export function verdaForStatus(options: VerdaClientOptions): { client: VerdaClient; api: MoneyApi } {
  const { client, api } = verdaForMoney({ requestTimeoutMs: 10_000, retry: { maxAttempts: 2, baseDelayMs: 200, maxDelayMs: 500, maxRetryAfterMs: 1_000 }, ...options });
  return { client, api: memoizedApi(api) };
}

/** Everything Verda bills, read at once (before the stacks' owned ids are known). */
export async function readVerda(api: MoneyApi): Promise<{ balance: Balance; book: PriceBook; instances: Instance[]; volumes: Volume[]; trash: Volume[] }> {
  const balance = await api.balance();
  const [book, instances, volumes, trash] = await Promise.all([loadPriceBook(api, balance.currency), api.instances(), api.volumes(), api.trash()]);
  return { balance, book, instances, volumes, trash };
}

export function verdaNow(read: Awaited<ReturnType<typeof readVerda>>, ownerOf: (id: string) => string | undefined, allOwned: Set<string>): VerdaNow {
  const { book, instances, volumes, trash } = read;
  const resources: BilledNow[] = [];
  for (const i of instances.filter((x) => !instanceGone(x.status))) {
    const r = instanceResource("day", i, book);
    resources.push({ id: i.id, item: r.item, perHour: r.perHour, stack: ownerOf(i.id), inTrash: false });
  }
  const listed = new Set<string>();
  for (const v of volumes.filter((x) => !volumeGone(x.status))) {
    listed.add(v.id);
    const r = volumeResource("month", v, book);
    resources.push({ id: v.id, item: r.item, perHour: r.perHour, stack: ownerOf(v.id), inTrash: false });
  }
  for (const v of trash.filter((x) => !listed.has(x.id))) {
    const r = volumeResource("month", v, book);
    resources.push({ id: v.id, item: `${r.item}, in trash`, perHour: r.perHour, stack: ownerOf(v.id), inTrash: true });
  }
  const leftovers = findLeftovers({ instances, volumes, trash, owned: allOwned, book });
  return { currency: book.currency, balance: read.balance.amount, perHour: resources.reduce((t, r) => t + r.perHour, 0), resources, book, leftovers };
}

/** Leftovers `npm run sweep -- --delete` would remove (a trashed volume only goes with --permanent). */
export function sweepable(leftovers: Leftover[]): Leftover[] {
  return leftovers.filter((l) => l.kind !== "volume in trash");
}

export { leftoversTotalPerMonth };
