// A data source's answer, or why it could not answer and how to fix it: `npm run status` shows the
// rest of the screen when one source fails, and the failure reads "unknown (<cause>; fix: ...)".

export type Probe<T> = { ok: true; value: T; ms: number } | { ok: false; cause: string; fix: string; ms: number };

/** Runs one source; a throw becomes an unknown with the given fix (an error may name a better one). */
export async function probe<T>(fix: string, read: () => Promise<T>): Promise<Probe<T>> {
  const started = Date.now();
  try {
    return { ok: true, value: await read(), ms: Date.now() - started };
  } catch (e) {
    const err = e as Error & { fix?: string };
    const cause = (err instanceof Error ? err.message : String(e)).split("\n").map((l) => l.trim()).filter(Boolean).slice(0, 3).join(" ");
    return { ok: false, cause: cause || "no answer", fix: err?.fix ?? fix, ms: Date.now() - started };
  }
}

/** An error that names its own fix. */
export function failure(cause: string, fix: string): Error {
  return Object.assign(new Error(cause), { fix });
}

export function unknownText(p: { cause: string; fix: string }): string {
  return `unknown (${p.cause}; fix: ${p.fix})`;
}

/** Runs `work` on every item, at most `limit` at a time, keeping the order. */
export async function pool<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await work(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
