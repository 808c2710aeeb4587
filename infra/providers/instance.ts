// Verda GPU/CPU instance as a Pulumi dynamic resource (pulumi-nodejs:dynamic/verda:Instance).
import * as pulumi from "@pulumi/pulumi";
import type { VerdaClient } from "../verda/client";
import { isVerdaApiError } from "../verda/errors";
import type { DeployInstanceBody, Instance as VerdaInstance } from "../verda/types";
import { hasCredentials, makeClient } from "./client-factory";
import { configureFromPulumi, providerSettings, type ProviderSettings } from "./runtime";
import { changedKeys, type CheckFailure, containsUnknown, pick, plain, pollUntil, type PollOptions } from "./shared";
import { adoptionFailures, type AdoptInput, differences, findAdopted, hasAdopt, reportAdoptedDifferences, validateAdopt } from "./adopt";
import { catalogueFailures, checkHostname, checkOneOf, checkTags, requirePositiveSize, requireText } from "./validation";
import { PROVIDER_VERSION, PROVIDER_VERSION_KEY, providerVersionChanged, withProviderVersion } from "./version";
import { INSTANCE_FAILED_STATUSES, instanceEnded, instanceGone } from "../verda/statuses";
import { cacheableProvider } from "../provider-code-cache";

export const CONTRACTS = ["LONG_TERM", "PAY_AS_YOU_GO", "SPOT"] as const;

export interface InstanceInputs {
  instanceType: string;
  image: string;
  hostname: string;
  description?: string;
  locationCode: string;
  sshKeyIds?: string[];
  startupScriptId?: string;
  osVolume?: { name: string; size: number };
  /** IDs of detached volumes to attach at creation (block volumes can only be attached while offline). */
  existingVolumes?: string[];
  isSpot?: boolean;
  contract?: (typeof CONTRACTS)[number];
  tags?: Record<string, string>;
  /** Set by the class (PROVIDER_VERSION); a new version is an in-place update that calls no API. */
  providerVersion?: string;
  /** Take this existing instance (by id or hostname) instead of deploying one; see adopt.ts. */
  adopt?: AdoptInput;
}

export interface InstanceOutputs extends InstanceInputs {
  /** The instance was adopted: the stack never replaces or deletes it. */
  adopted?: boolean;
  instanceId: string;
  ip?: string;
  status: string;
  osVolumeId?: string;
  pricePerHour?: number;
}

export interface InstanceArgs {
  instanceType: pulumi.Input<string>;
  image: pulumi.Input<string>;
  hostname: pulumi.Input<string>;
  description?: pulumi.Input<string>;
  locationCode: pulumi.Input<string>;
  sshKeyIds?: pulumi.Input<pulumi.Input<string>[]>;
  startupScriptId?: pulumi.Input<string>;
  osVolume?: pulumi.Input<{ name: pulumi.Input<string>; size: pulumi.Input<number> }>;
  existingVolumes?: pulumi.Input<pulumi.Input<string>[]>;
  isSpot?: pulumi.Input<boolean>;
  contract?: pulumi.Input<(typeof CONTRACTS)[number]>;
  tags?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /** Adopt this existing instance instead of deploying one (use with protect and retainOnDelete). */
  adopt?: pulumi.Input<AdoptInput>;
}

export const INSTANCE_INPUT_KEYS = [
  "instanceType", "image", "hostname", "description", "locationCode", "sshKeyIds", "startupScriptId",
  "osVolume", "existingVolumes", "isSpot", "contract", "tags",
] as const satisfies readonly (keyof InstanceInputs)[];
/**
 * Verda cannot change these on a running instance either, but they only matter when an instance is deployed:
 * an edit is recorded in state (no API call, no replace) and takes effect on the next instance.
 */
export const NEXT_INSTANCE_KEYS = ["description", "sshKeyIds"] as const satisfies readonly (keyof InstanceInputs)[];
/** Verda has no in-place update for these (only actions and tags), so a change replaces the instance. */
const REPLACE_KEYS = INSTANCE_INPUT_KEYS.filter((key) => key !== "tags" && !(NEXT_INSTANCE_KEYS as readonly string[]).includes(key));
/** Inputs kept in the outputs (what the next diff compares against). */
const STORED_KEYS = [...INSTANCE_INPUT_KEYS, PROVIDER_VERSION_KEY, "adopt"] as const;
/** What adoption compares between the config and the live instance (Verda reports these verbatim). */
const ADOPT_COMPARED = ["instanceType", "hostname", "locationCode", "isSpot", "image"] as const;
const UNORDERED_KEYS: (keyof InstanceInputs)[] = ["sshKeyIds", "existingVolumes"];

/** Statuses on the way to `running`. */
const PENDING_STATUSES = ["new", "ordered", "provisioning", "validating", "pending", "unknown"];

/** Our own input keys with explicit defaults, so `isSpot: false` and an omitted isSpot never differ. */
export function withDefaults(inputs: Partial<InstanceInputs>): InstanceInputs {
  return { isSpot: false, ...pick(inputs, INSTANCE_INPUT_KEYS) } as InstanceInputs;
}

export function validateInstanceInputs(news: InstanceInputs): CheckFailure[] {
  const failures: CheckFailure[] = [];
  requireText("instanceType", news.instanceType, failures);
  requireText("image", news.image, failures);
  requireText("locationCode", news.locationCode, failures);
  checkHostname("hostname", news.hostname, failures);
  checkOneOf("contract", news.contract, CONTRACTS, failures);
  checkTags("tags", news.tags, failures);
  if (news.osVolume !== undefined && !containsUnknown(news.osVolume)) {
    requireText("osVolume.name", news.osVolume?.name, failures);
    requirePositiveSize("osVolume.size", news.osVolume?.size, failures);
  }
  if (news.isSpot === false && news.contract === "SPOT") {
    failures.push({ property: "contract", reason: 'contract "SPOT" needs isSpot: true (or choose PAY_AS_YOU_GO)' });
  }
  return failures;
}

export function deployBody(inputs: InstanceInputs): DeployInstanceBody {
  const tags = Object.entries(inputs.tags ?? {}).map(([key, value]) => (value === "" ? { key } : { key, value }));
  return plain({
    instance_type: inputs.instanceType,
    image: inputs.image,
    hostname: inputs.hostname,
    location_code: inputs.locationCode,
    description: inputs.description ?? "",
    ssh_key_ids: inputs.sshKeyIds ?? [],
    startup_script_id: inputs.startupScriptId || undefined,
    os_volume: inputs.osVolume ? { name: inputs.osVolume.name, size: inputs.osVolume.size } : undefined,
    existing_volumes: inputs.existingVolumes?.length ? inputs.existingVolumes : undefined,
    is_spot: inputs.isSpot ?? false,
    contract: inputs.contract,
    tags: tags.length ? tags : undefined,
  });
}

/** The live instance in input terms (what adoption compares and records). */
function liveInputs(instance: VerdaInstance): Partial<InstanceInputs> {
  return plain({
    instanceType: instance.instance_type ?? undefined,
    hostname: instance.hostname ?? undefined,
    locationCode: instance.location ?? undefined,
    isSpot: typeof instance.is_spot === "boolean" ? instance.is_spot : undefined,
    image: typeof instance.image === "string" ? instance.image : undefined,
  });
}

async function findInstanceToAdopt(client: VerdaClient, adopt: AdoptInput): Promise<VerdaInstance> {
  return findAdopted(adopt, "instance", (id) => client.getInstance(id), () => client.listInstances(), (i) => i.hostname ?? undefined, (i) => !instanceGone(i.status));
}

/** Adopt: look the instance up, refuse on any difference, record it as it is. No mutating call. */
async function adoptInstance(inputs: InstanceInputs): Promise<{ id: string; outs: InstanceOutputs }> {
  const adopt = inputs.adopt as AdoptInput;
  const instance = await findInstanceToAdopt(makeClient(), adopt);
  const failures = adoptionFailures(adopt, differences(withDefaults(inputs) as unknown as Record<string, unknown>, liveInputs(instance), ADOPT_COMPARED));
  if (failures.length > 0) throw new Error(`Not adopted, nothing changed:\n${failures.map((f) => `  - ${f.reason}`).join("\n")}`);
  return { id: instance.id, outs: { ...outputsFor(plain({ ...inputs, ...liveInputs(instance) }) as InstanceInputs, instance), adopted: true } };
}

function outputsFor(inputs: InstanceInputs, instance: VerdaInstance): InstanceOutputs {
  return plain({
    ...(pick(inputs, STORED_KEYS) as InstanceInputs),
    instanceId: instance.id,
    ip: instance.ip ?? undefined,
    status: String(instance.status),
    osVolumeId: instance.os_volume_id || undefined,
    pricePerHour: typeof instance.price_per_hour === "number" ? instance.price_per_hour : Number(instance.price_per_hour) || undefined,
  });
}

function where(inputs: InstanceInputs): string {
  return `instance type ${inputs.instanceType} in location ${inputs.locationCode}`;
}

/** Turns Verda's deploy refusals into messages that say what to change. */
export function explainDeployError(error: unknown, inputs: InstanceInputs): unknown {
  if (!isVerdaApiError(error)) return error;
  if (error.status === 503) {
    return new Error(`No capacity for ${where(inputs)} (Verda ${error.status} ${error.code}: ${error.apiMessage}). Try another location or instance type, or retry later.`, { cause: error });
  }
  if (error.status === 402) {
    return new Error(`Insufficient funds to deploy ${where(inputs)} (Verda ${error.code}: ${error.apiMessage}). Top up the Verda project balance.`, { cause: error });
  }
  return new Error(`Deploying ${inputs.hostname} (${where(inputs)}) failed: ${error.message}`, { cause: error });
}

/**
 * Deletes the instance together with its OS volume only (explicit `volume_ids`, so other attached
 * volumes are detached and kept), then waits until it is gone so dependent volumes are free.
 */
export async function deleteInstance(client: VerdaClient, id: string, knownOsVolumeId: string | undefined, settings: ProviderSettings): Promise<void> {
  const current = await client.getInstance(id);
  if (!current || instanceEnded(current.status)) return;
  if (current.status !== "deleting") {
    const osVolumeId = current.os_volume_id || knownOsVolumeId;
    try {
      const results = await client.instanceAction({
        action: "delete",
        id,
        // Only the OS volume; without its id (never provisioned) nothing is deleted rather than too much.
        volume_ids: osVolumeId ? [osVolumeId] : [],
        delete_permanently: true,
      });
      const failed = results.find((r) => r.status === "error" && r.statusCode !== 404);
      if (failed) throw new Error(`Verda refused to delete instance ${id}: ${failed.error ?? "unknown error"}`);
    } catch (e) {
      if (isVerdaApiError(e, 404)) return;
      throw e;
    }
  }
  await pollUntil(
    () => client.getInstance(id),
    (i) => !i || instanceEnded(i.status),
    (i) => (i ? String(i.status) : "gone"),
    { intervalMs: settings.pollIntervalMs, timeoutMs: settings.instanceTimeoutMs, what: `instance ${id} to be deleted` },
  );
}

/**
 * Polling GET /instances/{id} every 1.5 s while an instance is created: 40 requests a minute, inside Verda's 60 per
 * path (docs/verda-api.md §8.2). Each second between `running` and the poll that sees it is a second of day-up and
 * of GPU billing with nothing running: the growing interval of other waits (up to 4x VERDA_POLL_INTERVAL_MS, 20 s by
 * default) cost 10 s on average here.
 */
export const INSTANCE_RUNNING_POLL_MS = 1_500;

/** How the create waits for `running`: a fixed interval, the configured one when shorter (tests). */
export function instanceRunningPoll(pollIntervalMs: number, timeoutMs: number, what: string): PollOptions {
  const intervalMs = Math.min(pollIntervalMs, INSTANCE_RUNNING_POLL_MS);
  return { intervalMs, maxIntervalMs: intervalMs, timeoutMs, what };
}

async function waitUntilRunning(client: VerdaClient, id: string, inputs: InstanceInputs, settings: ProviderSettings): Promise<VerdaInstance> {
  const instance = await pollUntil(
    () => client.getInstance(id),
    (i) => !!i && (i.status === "running" || INSTANCE_FAILED_STATUSES.includes(String(i.status))),
    (i) => (i ? String(i.status) : "not visible yet"),
    instanceRunningPoll(settings.pollIntervalMs, settings.instanceTimeoutMs, `instance ${inputs.hostname} (${id}) to reach running`),
  );
  return instance as VerdaInstance;
}

export const instanceProvider: pulumi.dynamic.ResourceProvider<InstanceInputs, InstanceOutputs> = cacheableProvider("infra/providers/instance.ts#instanceProvider", {
  async configure(req) {
    await configureFromPulumi(req);
  },

  async check(olds, news) {
    const inputs: InstanceInputs = { ...withProviderVersion(withDefaults(news), news), ...(news.adopt ? { adopt: news.adopt } : {}) };
    const failures = validateInstanceInputs(inputs);
    validateAdopt(inputs.adopt, failures);
    if (failures.length === 0 && hasCredentials()) {
      failures.push(...(await catalogueFailures(makeClient(), { instanceType: inputs.instanceType, locationCode: inputs.locationCode })));
    }
    // Adopting (not yet adopted): every difference from the live instance fails the preview, before anything changes.
    if (failures.length === 0 && hasAdopt(inputs.adopt) && !hasAdopt(olds?.adopt) && hasCredentials() && !containsUnknown(inputs.adopt)) {
      try {
        const instance = await findInstanceToAdopt(makeClient(), inputs.adopt);
        failures.push(...adoptionFailures(inputs.adopt, differences(inputs as unknown as Record<string, unknown>, liveInputs(instance), ADOPT_COMPARED)));
      } catch (e) {
        failures.push({ property: "adopt", reason: (e as Error).message });
      }
    }
    return { inputs, failures };
  },

  async diff(_id, oldOutputs, newInputs) {
    if (oldOutputs.adopted) {
      // Adopted: never replaced or changed by a config edit; the difference is reported instead.
      const adopt = newInputs.adopt ?? oldOutputs.adopt ?? {};
      reportAdoptedDifferences(adopt, differences(withDefaults(newInputs) as unknown as Record<string, unknown>, withDefaults(oldOutputs) as unknown as Record<string, unknown>, ADOPT_COMPARED));
      if (!hasAdopt(newInputs.adopt)) console.error(`warning: adopted: instance ${oldOutputs.hostname} (${oldOutputs.instanceId}) stays adopted although adopt was removed from the config: the stack never deletes it. To let go of it, remove it from the state: scripts/pulumi state delete <urn>`);
      return { changes: providerVersionChanged(oldOutputs, newInputs), replaces: [], deleteBeforeReplace: false };
    }
    const olds = withDefaults(oldOutputs);
    const news = withDefaults(newInputs);
    const replaces = changedKeys<InstanceInputs>(olds, news, REPLACE_KEYS, UNORDERED_KEYS);
    const updates = changedKeys<InstanceInputs>(olds, news, ["tags", ...NEXT_INSTANCE_KEYS], UNORDERED_KEYS);
    const nextInstanceOnly = updates.filter((key) => key !== "tags");
    if (nextInstanceOnly.length > 0 && replaces.length === 0) warnNextInstance(news.hostname, nextInstanceOnly);
    // A block volume cannot be attached to old and new instance at once: free it first.
    const holdsVolumes = (olds.existingVolumes?.length ?? 0) > 0 || (news.existingVolumes?.length ?? 0) > 0;
    // A create that timed out left a not-yet-running instance in state: let update finish the wait.
    const unfinished = PENDING_STATUSES.includes(String(oldOutputs.status));
    return {
      changes: replaces.length + updates.length > 0 || unfinished || providerVersionChanged(oldOutputs, newInputs),
      replaces: replaces as string[],
      deleteBeforeReplace: replaces.length > 0 && holdsVolumes,
    };
  },

  async create(inputs) {
    if (hasAdopt(inputs.adopt)) return adoptInstance(inputs);
    const settings = providerSettings();
    const client = makeClient(settings);
    let id: string;
    try {
      id = await client.deployInstance(deployBody(inputs));
    } catch (e) {
      throw explainDeployError(e, inputs);
    }
    let instance: VerdaInstance;
    try {
      instance = await waitUntilRunning(client, id, inputs, settings);
    } catch (e) {
      // Still provisioning at the deadline: record the ID so Pulumi tracks (and can delete) it.
      throw Object.assign(new Error(`${(e as Error).message}; the instance is kept in state, run \`pulumi up\` again or destroy it`), {
        id,
        properties: plain({ ...pick(inputs, STORED_KEYS), instanceId: id, status: "unknown" }),
        reasons: [(e as Error).message],
      });
    }
    if (instance.status !== "running") {
      const status = String(instance.status);
      // A failed deploy may still hold an OS volume: remove it so nothing keeps billing.
      await deleteInstance(client, id, instance.os_volume_id || undefined, settings).catch(() => undefined);
      throw new Error(`Instance ${inputs.hostname} (${where(inputs)}) ended in status "${status}" instead of running${status === "no_capacity" ? ": no capacity, try another location or type" : ""}`);
    }
    return { id, outs: outputsFor(inputs, instance) };
  },

  async read(id, props) {
    const client = makeClient();
    const instance = await client.getInstance(id);
    if (!instance || instanceGone(instance.status)) return { id: "" };
    const stored = pick(props ?? ({} as InstanceOutputs), STORED_KEYS) as InstanceInputs;
    // Reflect drift only for fields Verda reports verbatim; image/osVolume/existingVolumes stay as declared.
    const inputs: InstanceInputs = plain({
      ...stored,
      instanceType: instance.instance_type ?? stored.instanceType,
      hostname: instance.hostname ?? stored.hostname,
      locationCode: instance.location ?? stored.locationCode,
      isSpot: typeof instance.is_spot === "boolean" ? instance.is_spot : stored.isSpot,
      tags: tagsFromInstance(instance) ?? stored.tags,
    });
    // ReadResult types `inputs` as Outputs; the engine stores it as the resource inputs.
    const adopted = props?.adopted ? { adopted: true } : {};
    return { id, props: { ...outputsFor(inputs, instance), ...adopted }, inputs: inputs as InstanceOutputs };
  },

  async update(id, olds, news) {
    if (olds.adopted) {
      // Adopted: record the provider version (and the adopt reference), call nothing.
      return { outs: plain({ ...olds, ...pick(withProviderVersion(news, news), [PROVIDER_VERSION_KEY, "adopt"]) }) };
    }
    const tagsChanged = changedKeys<InstanceInputs>(olds, news, ["tags"]).length > 0;
    if (!tagsChanged && !PENDING_STATUSES.includes(String(olds.status))) {
      // Only a provider version or next-instance fields (description, SSH keys): record them, call nothing.
      return { outs: recordInputs(olds, news) };
    }
    const settings = providerSettings();
    const client = makeClient(settings);
    if (tagsChanged) await syncTags(client, id, news.tags ?? {});
    let instance = await client.getInstance(id);
    if (!instance) throw new Error(`Instance ${id} no longer exists at Verda; run \`pulumi refresh\``);
    if (PENDING_STATUSES.includes(String(instance.status))) instance = await waitUntilRunning(client, id, news, settings);
    return { outs: outputsFor(news, instance) };
  },

  async delete(id, props) {
    if (props.adopted) {
      // Belt and braces behind retainOnDelete: an adopted instance is never deleted by the stack.
      console.error(`warning: adopted instance ${props.hostname} (${id}) is left running at Verda, untouched; only the stack forgets it`);
      return;
    }
    const settings = providerSettings();
    await deleteInstance(makeClient(settings), id, props.osVolumeId, settings);
  },
});

/** The old outputs with the new inputs (an input removed from the program is removed from state too). */
export function recordInputs(olds: InstanceOutputs, news: InstanceInputs): InstanceOutputs {
  const kept: Record<string, unknown> = { ...olds };
  for (const key of STORED_KEYS) delete kept[key];
  return plain({ ...kept, ...pick(withProviderVersion(news, news), STORED_KEYS) }) as InstanceOutputs;
}

/**
 * The dynamic-provider host has no pulumi.log: its stderr reaches the CLI output as an info line, so the
 * warning shows in preview and up.
 */
function warnNextInstance(hostname: string, keys: readonly string[]): void {
  console.error(
    `warning: instance ${hostname}: ${keys.join(" and ")} changed. Verda cannot change ${keys.length > 1 ? "them" : "it"} on a running instance: ` +
      "the new value is recorded in state and takes effect on the next instance (after the next destroy and up); the running worker is not replaced.",
  );
}

function tagsFromInstance(instance: VerdaInstance): Record<string, string> | undefined {
  if (!Array.isArray(instance.tags)) return undefined;
  return Object.fromEntries(instance.tags.map((t) => [t.key, t.value ?? ""]));
}

/** Makes the instance's tags equal to `wanted` (tag IDs come from the instance itself). */
async function syncTags(client: VerdaClient, id: string, wanted: Record<string, string>): Promise<void> {
  const current = (await client.getInstance(id))?.tags ?? [];
  for (const tag of current) {
    if (!(tag.key in wanted) || wanted[tag.key] !== (tag.value ?? "")) await client.deleteInstanceTag(id, tag.id);
  }
  for (const [key, value] of Object.entries(wanted)) {
    if (!current.some((t) => t.key === key && (t.value ?? "") === value)) await client.addInstanceTag(id, value === "" ? { key } : { key, value });
  }
}

/** A Verda instance. Deleting it removes its OS volume too, but never detaches-and-deletes other volumes. */
export class Instance extends pulumi.dynamic.Resource {
  declare readonly instanceId: pulumi.Output<string>;
  declare readonly ip: pulumi.Output<string | undefined>;
  declare readonly status: pulumi.Output<string>;
  declare readonly osVolumeId: pulumi.Output<string | undefined>;
  declare readonly pricePerHour: pulumi.Output<number | undefined>;
  declare readonly adopted: pulumi.Output<boolean | undefined>;

  constructor(name: string, args: InstanceArgs, opts?: pulumi.CustomResourceOptions) {
    super(instanceProvider, name, { ...args, providerVersion: PROVIDER_VERSION, instanceId: undefined, ip: undefined, status: undefined, osVolumeId: undefined, pricePerHour: undefined, adopted: undefined }, opts, "verda", "Instance");
  }
}
