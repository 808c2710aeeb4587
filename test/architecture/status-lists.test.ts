// Verda's "gone" instance statuses are spelled once, in infra/verda/statuses.ts: three copies (the instance
// provider, the instance guard, the status screen) had drifted apart. Production code may name a status in a
// comparison, but a list of gone/failed statuses anywhere else is a copy waiting to drift. The consumers are then
// checked to agree, status by status: what the screen stops billing, the sweep stops calling a stray, the guard
// calls gone.
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { refusalFor } from "../../infra/providers/instance-guard";
import { findLeftovers } from "../../infra/money/sweep";
import { verdaNow } from "../../infra/status/verda";
import { INSTANCE_GONE_STATUSES, instanceGone } from "../../infra/verda/statuses";
import type { Instance } from "../../infra/verda/types";
import type { PriceBook } from "../../infra/money/types";

const ROOT = path.resolve(__dirname, "../..");
const PRODUCTION = ["index.ts", "infra", "components", "policy", "scripts"];
const HOME = path.join("infra", "verda", "statuses.ts");
const GENERATED = path.join("infra", "verda", "openapi-types.ts");

function sourceFiles(entry: string): string[] {
  const full = path.join(ROOT, entry);
  if (!fs.existsSync(full)) return [];
  if (fs.statSync(full).isFile()) return [full];
  return fs.readdirSync(full, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts")).map((f) => path.join(full, f));
}

/** Array literals in `source` holding two or more of Verda's end-of-life instance statuses. */
function statusLists(source: string): string[] {
  const words = ["deleting", "discontinued", "notfound"];
  return [...source.matchAll(/\[[^\][]*\]/g)].map((m) => m[0]).filter((list) => words.filter((w) => list.includes(`"${w}"`)).length >= 2);
}

describe("Verda instance statuses", () => {
  it("the gone (and failed) statuses are listed only in infra/verda/statuses.ts", () => {
    const files = PRODUCTION.flatMap(sourceFiles).filter((f) => ![HOME, GENERATED].includes(path.relative(ROOT, f)));
    expect(files.length).toBeGreaterThan(50);
    const copies = files.flatMap((f) => statusLists(fs.readFileSync(f, "utf8")).map((list) => `${path.relative(ROOT, f)}: ${list}`));
    expect(copies).toEqual([]);
  });

  it("the status screen, the sweep and the instance guard agree on every status", () => {
    const book: PriceBook = { currency: "usd", instanceTypes: { "1H100.80S.32V": { onDemand: 3.56, spot: 1.2, gpus: 1 } }, volumeTypes: {} };
    const guard = { instanceId: "i-1", scratchVolumeId: "v-1", stack: "workshop-day", providerVersion: "x" };
    for (const status of ["running", "offline", "provisioning", ...INSTANCE_GONE_STATUSES]) {
      const instance = { id: "i-1", hostname: "h", status, instance_type: "1H100.80S.32V", location: "FIN-01", is_spot: false, created_at: "2026-12-01T00:00:00Z", price_per_hour: 1 } as unknown as Instance;
      const billed = verdaNow({ balance: { amount: 1, currency: "usd" }, book, instances: [instance], volumes: [], trash: [] }, () => undefined, new Set()).resources.length > 0;
      const stray = findLeftovers({ instances: [instance], volumes: [], trash: [], owned: new Set(), book }).length > 0;
      const guardSaysGone = /no longer exists|spot eviction/.test(refusalFor(guard, status) ?? "");
      expect({ status, billed, stray, guardSaysGone }).toEqual({ status, billed: !instanceGone(status), stray: !instanceGone(status), guardSaysGone: instanceGone(status) });
    }
  });
});
