// The order in which placements are tried: the configured one, then (for spot) the same on
// demand, then each configured fallback, each overriding fields of the configured placement.
import type { CapacitySettings } from "./settings";
import type { Placement } from "./types";

export const describePlacement = (p: Placement) => `${p.instanceType} ${p.spot ? "spot" : "on-demand"} in ${p.location}`;

export function placementCandidates(primary: Placement, capacity: Pick<CapacitySettings, "fallbacks" | "spotToOnDemand">): Placement[] {
  const list: Placement[] = [primary];
  if (primary.spot && capacity.spotToOnDemand) list.push({ ...primary, spot: false });
  for (const f of capacity.fallbacks) {
    list.push({
      instanceType: f.instanceType ?? primary.instanceType,
      location: f.location ?? primary.location,
      spot: f.spot ?? primary.spot,
    });
  }
  const seen = new Set<string>();
  return list.filter((p) => {
    const key = describePlacement(p);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
