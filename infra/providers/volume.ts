// Verda block volume (NVMe) or shared file system (NVMe_Shared) as a Pulumi dynamic resource
// (pulumi-nodejs:dynamic/verda:Volume).
import * as pulumi from "@pulumi/pulumi";
import type { VerdaClient } from "../verda/client";
import { isVerdaApiError } from "../verda/errors";
import type { Volume as VerdaVolume } from "../verda/types";
import { hasCredentials, makeClient } from "./client-factory";
import { configureFromPulumi, providerSettings, type ProviderSettings } from "./runtime";
import { changedKeys, type CheckFailure, containsUnknown, pick, plain, pollUntil, UNKNOWN } from "./shared";
import { adoptionFailures, type AdoptInput, differences, findAdopted, hasAdopt, reportAdoptedDifferences, validateAdopt } from "./adopt";
import { catalogueFailures, checkOneOf, requirePositiveSize, requireText } from "./validation";
import { PROVIDER_VERSION, PROVIDER_VERSION_KEY, providerVersionChanged, withProviderVersion } from "./version";
import { cacheableProvider } from "../provider-code-cache";

export const VOLUME_TYPES = ["NVMe", "NVMe_Shared"] as const;
export type VolumeKind = (typeof VOLUME_TYPES)[number];

export interface VolumeInputs {
  name: string;
  /** GB; can grow in place, never shrink. */
  size: number;
  /** `NVMe` (block, default) or `NVMe_Shared` (SFS, NFS-mounted, attachable to several instances). */
  type?: VolumeKind;
  locationCode: string;
  /** Instances to attach to. A block volume takes one, and Verda only attaches it while that instance is shut down. */
  instanceIds?: string[];
  /** Delete permanently instead of moving to Verda's 96 h trash. Default false. */
  permanent?: boolean;
  /** Set by the class (PROVIDER_VERSION); a new version is an in-place update that calls no API. */
  providerVersion?: string;
  /** Take this existing volume (by id or name) instead of creating one; see adopt.ts. */
  adopt?: AdoptInput;
}

export interface VolumeOutputs extends VolumeInputs {
  /** The volume was adopted: the stack never changes or deletes it. */
  adopted?: boolean;
  volumeId: string;
  status: string;
  mountCommand?: string;
  pseudoPath?: string;
  target?: string;
  createDirectoryCommand?: string;
  filesystemToFstabCommand?: string;
  attachedInstanceIds: string[];
}

export interface VolumeArgs {
  name: pulumi.Input<string>;
  size: pulumi.Input<number>;
  type?: pulumi.Input<VolumeKind>;
  locationCode: pulumi.Input<string>;
  instanceIds?: pulumi.Input<pulumi.Input<string>[]>;
  permanent?: pulumi.Input<boolean>;
  /** Adopt this existing volume instead of creating one (use with protect and retainOnDelete). */
  adopt?: pulumi.Input<AdoptInput>;
}

export const VOLUME_INPUT_KEYS = ["name", "size", "type", "locationCode", "instanceIds", "permanent"] as const satisfies readonly (keyof VolumeInputs)[];
/** Inputs kept in the outputs (what the next diff compares against). */
const STORED_KEYS = [...VOLUME_INPUT_KEYS, PROVIDER_VERSION_KEY, "adopt"] as const;
/** What adoption compares between the config and the live volume. */
const ADOPT_COMPARED = ["name", "size", "type", "locationCode"] as const;
/** Inputs an update can apply in place (type and location replace). */
const UPDATE_KEYS = ["name", "size", "instanceIds", "permanent"] as const satisfies readonly (keyof VolumeInputs)[];

/** Statuses in which the volume exists and accepts actions. */
const SETTLED = ["detached", "created", "attached", "exported"];
const DEAD = ["deleted", "canceled", "canceling"];

const kindOf = (inputs: Pick<VolumeInputs, "type">): VolumeKind => inputs.type ?? "NVMe";
const isShared = (inputs: Pick<VolumeInputs, "type">): boolean => kindOf(inputs) === "NVMe_Shared";

/** Our own input keys with explicit defaults, so `type: "NVMe"` and an omitted type never differ. */
export function withDefaults(inputs: Partial<VolumeInputs>): VolumeInputs {
  return { type: "NVMe", permanent: false, ...pick(inputs, VOLUME_INPUT_KEYS) } as VolumeInputs;
}

export function validateVolumeInputs(olds: Partial<VolumeInputs>, news: VolumeInputs): CheckFailure[] {
  const failures: CheckFailure[] = [];
  requireText("name", news.name, failures);
  requireText("locationCode", news.locationCode, failures);
  requirePositiveSize("size", news.size, failures);
  checkOneOf("type", news.type, VOLUME_TYPES, failures);
  const ids = news.instanceIds;
  if (Array.isArray(ids) && !isShared(news) && ids.length > 1) {
    failures.push({ property: "instanceIds", reason: `a block (NVMe) volume attaches to one instance, got ${ids.length}; use type "NVMe_Shared" to share it` });
  }
  const sameVolume = kindOf(olds) === kindOf(news) && olds.locationCode === news.locationCode;
  if (sameVolume && typeof olds.size === "number" && typeof news.size === "number" && news.size < olds.size) {
    failures.push({
      property: "size",
      reason: `size cannot shrink from ${olds.size} to ${news.size} GB: Verda volumes only grow. Keep size >= ${olds.size}, or create a new volume under another resource name and copy the data`,
    });
  }
  return failures;
}

/** IDs of the instances the volume is attached to (`instances` holds IDs or summaries depending on source). */
export function attachedInstanceIds(volume: VerdaVolume): string[] {
  const ids = new Set<string>();
  if (typeof volume.instance_id === "string" && volume.instance_id) ids.add(volume.instance_id);
  for (const entry of (Array.isArray(volume.instances) ? volume.instances : []) as unknown[]) {
    if (typeof entry === "string" && entry) ids.add(entry);
    else if (entry && typeof entry === "object" && typeof (entry as { id?: unknown }).id === "string") ids.add((entry as { id: string }).id);
  }
  return [...ids].sort();
}

/** The live volume in input terms (what adoption compares and records). */
function liveInputs(volume: VerdaVolume): Partial<VolumeInputs> {
  return plain({ name: volume.name ?? undefined, size: volume.size ?? undefined, type: (volume.type as VolumeKind) ?? undefined, locationCode: volume.location ?? undefined });
}

/** Not deleted and not in the trash. */
export const aliveVolume = (v: VerdaVolume) => String(v.status) !== "deleted" && !v.deleted_at;

async function findVolumeToAdopt(client: VerdaClient, adopt: AdoptInput): Promise<VerdaVolume> {
  return findAdopted(adopt, "volume", (id) => client.getVolume(id), () => client.listVolumes(), (v) => v.name ?? undefined, aliveVolume);
}

/** Adopt: look the volume up, refuse on any difference, record it as it is. No mutating call. */
async function adoptVolume(inputs: VolumeInputs): Promise<{ id: string; outs: VolumeOutputs }> {
  const adopt = inputs.adopt as AdoptInput;
  const volume = await findVolumeToAdopt(makeClient(), adopt);
  const failures = adoptionFailures(adopt, differences(withDefaults(inputs) as unknown as Record<string, unknown>, liveInputs(volume), ADOPT_COMPARED));
  if (failures.length > 0) throw new Error(`Not adopted, nothing changed:\n${failures.map((f) => `  - ${f.reason}`).join("\n")}`);
  const recorded = plain({ ...inputs, ...liveInputs(volume) }) as VolumeInputs;
  return { id: volume.id, outs: { ...outputsFor(recorded, volume), adopted: true } };
}

function outputsFor(inputs: VolumeInputs, volume: VerdaVolume): VolumeOutputs {
  return plain({
    ...(pick(inputs, STORED_KEYS) as VolumeInputs),
    volumeId: volume.id,
    status: String(volume.status),
    mountCommand: volume.mount_command ?? undefined,
    pseudoPath: volume.pseudo_path ?? undefined,
    target: volume.target ?? undefined,
    createDirectoryCommand: volume.create_directory_command ?? undefined,
    filesystemToFstabCommand: volume.filesystem_to_fstab_command ?? undefined,
    attachedInstanceIds: attachedInstanceIds(volume),
  });
}

async function waitFor(client: VerdaClient, id: string, settings: ProviderSettings, what: string, done: (v: VerdaVolume) => boolean): Promise<VerdaVolume> {
  const volume = await pollUntil(
    async () => {
      const v = await client.getVolume(id);
      if (v && DEAD.includes(String(v.status)) && !done(v)) throw new Error(`Volume ${id} is ${v.status} while waiting for ${what}`);
      return v;
    },
    (v) => !!v && done(v),
    (v) => (v ? String(v.status) : "not visible yet"),
    { intervalMs: settings.pollIntervalMs, timeoutMs: settings.volumeTimeoutMs, what: `volume ${id} ${what}` },
  );
  return volume as VerdaVolume;
}

/** Explains Verda's 403 for block volumes on running instances. */
function explainAttachError(error: unknown, volumeName: string, instanceIds: string[], verb: string): unknown {
  if (isVerdaApiError(error, 403)) {
    return new Error(
      `Cannot ${verb} block volume ${volumeName} ${verb === "attach" ? "to" : "from"} ${instanceIds.join(", ")}: ${error.apiMessage}. Verda needs the instance shut down; attach block volumes at instance creation with Instance.existingVolumes, or use type NVMe_Shared`,
      { cause: error },
    );
  }
  return error;
}

export async function attach(client: VerdaClient, volume: VerdaVolume, kind: VolumeInputs, instanceIds: string[], settings: ProviderSettings): Promise<void> {
  if (instanceIds.length === 0) return;
  try {
    await client.volumeAction(isShared(kind) ? { action: "attach", id: volume.id, instance_ids: instanceIds } : { action: "attach", id: volume.id, instance_id: instanceIds[0] });
  } catch (e) {
    throw explainAttachError(e, volume.name, instanceIds, "attach");
  }
  await waitFor(client, volume.id, settings, "to attach", (v) => SETTLED.includes(String(v.status)) && instanceIds.every((i) => attachedInstanceIds(v).includes(i)));
}

export async function detach(client: VerdaClient, volume: VerdaVolume, kind: VolumeInputs, instanceIds: string[], settings: ProviderSettings): Promise<void> {
  const attached = instanceIds.filter((i) => attachedInstanceIds(volume).includes(i));
  if (attached.length === 0) return;
  try {
    await client.volumeAction(isShared(kind) ? { action: "detach", id: volume.id, instance_ids: attached } : { action: "detach", id: volume.id, instance_id: attached[0] });
  } catch (e) {
    if (isVerdaApiError(e, 404)) return;
    throw explainAttachError(e, volume.name, attached, "detach");
  }
  await waitFor(client, volume.id, settings, "to detach", (v) => SETTLED.includes(String(v.status)) && !attached.some((i) => attachedInstanceIds(v).includes(i)));
}

export const volumeProvider: pulumi.dynamic.ResourceProvider<VolumeInputs, VolumeOutputs> = cacheableProvider("infra/providers/volume.ts#volumeProvider", {
  async configure(req) {
    await configureFromPulumi(req);
  },

  async check(olds, news) {
    const inputs: VolumeInputs = { ...withProviderVersion(withDefaults(news), news), ...(news.adopt ? { adopt: news.adopt } : {}) };
    const failures = validateVolumeInputs(pick(olds ?? {}, VOLUME_INPUT_KEYS), inputs);
    validateAdopt(inputs.adopt, failures);
    if (failures.length === 0 && hasCredentials()) {
      failures.push(...(await catalogueFailures(makeClient(), { locationCode: inputs.locationCode })));
    }
    // Adopting (not yet adopted): every difference from the live volume fails the preview, before anything changes.
    if (failures.length === 0 && hasAdopt(inputs.adopt) && !hasAdopt(olds?.adopt) && hasCredentials() && !containsUnknown(inputs)) {
      try {
        const volume = await findVolumeToAdopt(makeClient(), inputs.adopt);
        failures.push(...adoptionFailures(inputs.adopt, differences(inputs as unknown as Record<string, unknown>, liveInputs(volume), ADOPT_COMPARED)));
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
      if (!hasAdopt(newInputs.adopt)) console.error(`warning: adopted: ${adopt.what ?? "volume"} ${oldOutputs.volumeId} stays adopted although adopt was removed from the config: the stack never deletes it. To let go of it, remove it from the state: scripts/pulumi state delete <urn>`);
      return { changes: providerVersionChanged(oldOutputs, newInputs), replaces: [] };
    }
    const olds = withDefaults(oldOutputs);
    const news = withDefaults(newInputs);
    const replaces = changedKeys<VolumeInputs>(olds, news, ["type", "locationCode"]);
    const updates = changedKeys<VolumeInputs>(olds, news, UPDATE_KEYS, ["instanceIds"]);
    // An unknown or smaller size cannot be applied in place (check rejects a known shrink).
    const shrinks = news.size !== (UNKNOWN as unknown) && typeof olds.size === "number" && news.size < olds.size;
    if (shrinks) replaces.push("size");
    return { changes: replaces.length + updates.length > 0 || providerVersionChanged(oldOutputs, newInputs), replaces: replaces as string[] };
  },

  async create(inputs) {
    if (hasAdopt(inputs.adopt)) return adoptVolume(inputs);
    const settings = providerSettings();
    const client = makeClient(settings);
    const id = await client.createVolume({ type: kindOf(inputs), location_code: inputs.locationCode, size: inputs.size, name: inputs.name });
    try {
      let volume = await waitFor(client, id, settings, "to be ready", (v) => SETTLED.includes(String(v.status)));
      if (inputs.instanceIds?.length) {
        await attach(client, volume, inputs, inputs.instanceIds, settings);
        volume = (await client.getVolume(id)) ?? volume;
      }
      return { id, outs: outputsFor(inputs, volume) };
    } catch (e) {
      // The volume exists: keep it in state so it is not leaked.
      throw Object.assign(new Error(`Volume ${inputs.name} (${id}) was created but did not become usable: ${(e as Error).message}`), {
        id,
        properties: plain({ ...pick(inputs, STORED_KEYS), volumeId: id, status: "unknown", attachedInstanceIds: [] }),
        reasons: [(e as Error).message],
      });
    }
  },

  async read(id, props) {
    const volume = await makeClient().getVolume(id);
    if (!volume || String(volume.status) === "deleted" || volume.deleted_at) return { id: "" };
    const stored = pick(props ?? ({} as VolumeOutputs), STORED_KEYS) as VolumeInputs;
    const inputs: VolumeInputs = plain({ ...stored, name: volume.name ?? stored.name, size: volume.size ?? stored.size, locationCode: volume.location ?? stored.locationCode });
    const adopted = props?.adopted ? { adopted: true } : {};
    return { id, props: { ...outputsFor(inputs, volume), ...adopted }, inputs: inputs as VolumeOutputs };
  },

  async update(id, olds, news) {
    if (olds.adopted) {
      // Adopted: record the provider version (and the adopt reference), call nothing.
      return { outs: plain({ ...olds, ...pick(withProviderVersion(news, news), [PROVIDER_VERSION_KEY, "adopt"]) }) };
    }
    if (changedKeys<VolumeInputs>(withDefaults(olds), withDefaults(news), UPDATE_KEYS, ["instanceIds"]).length === 0) {
      // Only a new provider version: record it (and with it the current code), call nothing.
      return { outs: plain({ ...olds, ...pick(withProviderVersion(news, news), STORED_KEYS) }) };
    }
    const settings = providerSettings();
    const client = makeClient(settings);
    let volume = await client.getVolume(id);
    if (!volume || String(volume.status) === "deleted") throw new Error(`Volume ${id} no longer exists at Verda; run \`pulumi refresh\``);
    if (news.name !== olds.name) await client.volumeAction({ action: "rename", id, name: news.name });
    if (news.size > volume.size) {
      await client.volumeAction({ action: "resize", id, size: news.size });
      volume = await waitFor(client, id, settings, `to grow to ${news.size} GB`, (v) => v.size >= news.size && SETTLED.includes(String(v.status)));
    }
    const before = olds.instanceIds ?? [];
    const after = news.instanceIds ?? [];
    await detach(client, volume, news, before.filter((i) => !after.includes(i)), settings);
    volume = (await client.getVolume(id)) ?? volume;
    await attach(client, volume, news, after.filter((i) => !attachedInstanceIds(volume!).includes(i)), settings);
    volume = (await client.getVolume(id)) ?? volume;
    return { outs: outputsFor(news, volume) };
  },

  async delete(id, props) {
    if (props.adopted) {
      // Belt and braces behind retainOnDelete: an adopted volume is never deleted by the stack.
      console.error(`warning: adopted volume ${props.name} (${id}) is left at Verda, untouched; only the stack forgets it`);
      return;
    }
    const settings = providerSettings();
    const client = makeClient(settings);
    const permanent = props.permanent ?? false;
    const volume = await client.getVolume(id);
    if (!volume) return;
    if (String(volume.status) === "deleted" || volume.deleted_at) {
      // Already in trash (or gone); only a permanent delete still has work to do.
      if (!permanent || volume.is_permanently_deleted) return;
    } else {
      await detach(client, volume, props, attachedInstanceIds(volume), settings);
    }
    await client.deleteVolume(id, permanent);
  },
});

/** A Verda volume: block storage (`NVMe`) or a shared file system (`NVMe_Shared`). Delete detaches first. */
export class Volume extends pulumi.dynamic.Resource {
  declare readonly volumeId: pulumi.Output<string>;
  declare readonly status: pulumi.Output<string>;
  declare readonly mountCommand: pulumi.Output<string | undefined>;
  declare readonly pseudoPath: pulumi.Output<string | undefined>;
  declare readonly target: pulumi.Output<string | undefined>;
  declare readonly createDirectoryCommand: pulumi.Output<string | undefined>;
  declare readonly filesystemToFstabCommand: pulumi.Output<string | undefined>;
  declare readonly attachedInstanceIds: pulumi.Output<string[]>;
  declare readonly adopted: pulumi.Output<boolean | undefined>;

  constructor(name: string, args: VolumeArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      volumeProvider,
      name,
      {
        ...args,
        providerVersion: PROVIDER_VERSION,
        volumeId: undefined,
        status: undefined,
        mountCommand: undefined,
        pseudoPath: undefined,
        target: undefined,
        createDirectoryCommand: undefined,
        filesystemToFstabCommand: undefined,
        attachedInstanceIds: undefined,
        adopted: undefined,
      },
      opts,
      "verda",
      "Volume",
    );
  }
}
