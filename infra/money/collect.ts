// Gathers what a cost report needs for one stack: its config and outputs (and its sibling
// month/day stacks' config for the whole-environment forecast), Verda prices and the stack's
// running resources. Used by `npm run cost`; the data sources are injectable.
import { instanceResource, volumeResource, type BilledResource } from "./model";
import { externalCosts } from "./external";
import { loadPriceBook } from "./prices";
import { costReport, type CostReport } from "./report";
import { moneySettingsOf, phaseOf, planFromConfigs, layerAndEnvironment, serverlessPricesOf, type ConfigValues } from "./plan-from-config";
import { withServerlessPrices } from "./serverless";
import type { MoneyApi } from "./verda-reads";
import type { VerdaClient } from "../verda/client";
import type { Instance, Volume } from "../verda/types";
import type { Layer, PriceBook } from "./types";

export interface StackSource {
  config(stack: string): ConfigValues | undefined;
  outputs(stack: string): Record<string, unknown>;
}

const str = (v: unknown) => (typeof v === "string" && v.length > 0 ? v : undefined);

/** Where a stack's resources are looked up: one GET each, or lists the caller already holds. */
export interface ResourceLookup {
  instance(id: string): Promise<Instance | undefined>;
  volume(id: string): Promise<Volume | undefined>;
}

/** Verda's instance and volume lists (trash excluded, as GET /volumes) as a lookup: no request per resource. */
export function lookupInLists(listed: { instances: Instance[]; volumes: Volume[] }): ResourceLookup {
  const byId = <T extends { id: string }>(items: T[]) => new Map(items.map((x) => [x.id.toLowerCase(), x]));
  const instances = byId(listed.instances);
  const volumes = byId(listed.volumes);
  return { instance: async (id) => instances.get(id.toLowerCase()), volume: async (id) => volumes.get(id.toLowerCase()) };
}

/** This stack's resources billing now, found from its outputs (ids) and looked up at Verda. */
async function runningResources(layer: Layer, outputs: Record<string, unknown>, lookup: ResourceLookup, book: PriceBook): Promise<BilledResource[]> {
  const found: BilledResource[] = [];
  const volume = async (id: string | undefined) => {
    const v = id ? await lookup.volume(id) : undefined;
    if (v && v.status !== "deleted") found.push(volumeResource(layer, v, book));
  };
  if (layer === "day") {
    const id = str(outputs.instanceId);
    const instance = id ? await lookup.instance(id) : undefined;
    if (instance) {
      found.push(instanceResource(layer, instance, book));
      await volume(instance.os_volume_id ?? undefined);
    }
    await volume(str(outputs.scratchVolumeId));
  }
  if (layer === "month") {
    await volume(str(outputs.sfsId));
    await volume(str(outputs.scratchVolumeId));
  }
  return found;
}

/** `listed`: Verda's instance and volume lists when the caller read them already (then no GET per resource). */
export async function collectCostReport(
  stack: string,
  deps: { source: StackSource; api: MoneyApi; client: VerdaClient; now?: Date; listed?: { instances: Instance[]; volumes: Volume[] } },
): Promise<CostReport> {
  const own = deps.source.config(stack);
  if (!own) throw new Error(`cannot read the config of stack '${stack}' (does it exist? scripts/pulumi stack ls)`);
  const phase = phaseOf(stack, own);
  const { layer, environment } = layerAndEnvironment(phase);
  const env = environment ?? "workshop";
  const sibling = (kind: "day" | "month") => {
    const ref = own[`comfyume:stackRefs`] as { month?: string } | undefined;
    const name = kind === "month" && ref?.month ? ref.month : `${env}-${kind}`;
    return deps.source.config(name);
  };
  const dayConfig = layer === "day" ? own : sibling("day");
  const plan = planFromConfigs({ day: dayConfig, month: layer === "month" ? own : sibling("month") });
  const settings = moneySettingsOf(own);
  const balance = await deps.api.balance();
  const book = withServerlessPrices(await loadPriceBook(deps.api, balance.currency), serverlessPricesOf(dayConfig));
  const lookup: ResourceLookup = deps.listed ? lookupInLists(deps.listed) : { instance: (id) => deps.client.getInstance(id), volume: (id) => deps.client.getVolume(id) };
  const running = await runningResources(layer, deps.source.outputs(stack), lookup, book);
  return costReport({
    stack,
    layer,
    book,
    external: externalCosts(settings.forecast, balance.currency),
    plan,
    schedule: { workshopDays: settings.forecast.workshopDays, hoursPerDay: settings.forecast.hoursPerDay, periodHours: settings.forecast.periodHours, trashHours: settings.forecast.trashHours },
    budget: settings.budget,
    running,
    now: deps.now ?? new Date(),
    balance: balance.amount,
  });
}
