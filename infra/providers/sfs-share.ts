// SfsShare (pulumi-nodejs:dynamic/verda:SfsShare): the instance is allowed on the SFS before anything
// mounts it. Verda's console calls it "share settings"; the API does it by attaching the SFS to the
// instance (`PUT /volumes {"action":"attach","id":<sfs>,"instance_ids":[...]}`, allowed on running
// instances for NVMe_Shared; docs/verda-api.md §7.6), which authorises the instance on the NFS export.
//
// create: the SFS already lists the instance (attached at deploy, or shared in the console) -> nothing to
// do; else attach it and wait until the SFS lists it. When the API refuses, the error gives the exact
// console step. delete: nothing, ever: revoking the share of a running (adopted) instance would cut it off
// its models; a deleted instance leaves the share by itself.
import * as pulumi from "@pulumi/pulumi";
import { isVerdaApiError } from "../verda/errors";
import type { Volume as VerdaVolume } from "../verda/types";
import { makeClient } from "./client-factory";
import { configureFromPulumi, providerSettings } from "./runtime";
import { changedKeys, type CheckFailure, containsUnknown, pick, plain, pollUntil } from "./shared";
import { requireText } from "./validation";
import { PROVIDER_VERSION, providerVersionChanged } from "./version";
import { aliveVolume, attachedInstanceIds } from "./volume";
import { cacheableProvider } from "../provider-code-cache";

export interface SfsShareInputs {
  /** The SFS (NVMe_Shared volume) id. */
  sfsId: string;
  /** The instance that must be allowed to mount it. */
  instanceId: string;
  /** The instance's hostname (messages). */
  hostname: string;
  providerVersion?: string;
}

export interface SfsShareOutputs extends SfsShareInputs {
  /** True when this resource attached it; false when the SFS already listed the instance. */
  sharedByStack: boolean;
}

export type SfsShareArgs = { [K in Exclude<keyof SfsShareInputs, "providerVersion">]: pulumi.Input<SfsShareInputs[K]> };

const KEYS = ["sfsId", "instanceId", "hostname"] as const satisfies readonly (keyof SfsShareInputs)[];

/** The console step when the API cannot do it (named SFS, named instance). */
export function consoleStep(sfs: { id: string; name?: string | null }, instance: { id: string; hostname: string }): string {
  return (
    `In the Verda console: Storage -> Shared file systems -> ${sfs.name ?? sfs.id} (${sfs.id}) -> Share settings -> add instance ` +
    `${instance.hostname} (${instance.id}), save, then run the same \`scripts/pulumi up\` again`
  );
}

export const sfsShareProvider: pulumi.dynamic.ResourceProvider<SfsShareInputs, SfsShareOutputs> = cacheableProvider("infra/providers/sfs-share.ts#sfsShareProvider", {
  async configure(req) {
    await configureFromPulumi(req);
  },

  async check(_olds, news) {
    const inputs = plain({ ...pick(news, KEYS), providerVersion: news.providerVersion }) as SfsShareInputs;
    const failures: CheckFailure[] = [];
    for (const key of KEYS) if (!containsUnknown(inputs[key])) requireText(key, inputs[key], failures);
    return { inputs, failures };
  },

  async diff(_id, olds, news) {
    const replaces = changedKeys<SfsShareInputs>(olds, news, ["sfsId", "instanceId"]);
    const updates = changedKeys<SfsShareInputs>(olds, news, ["hostname"]);
    return { changes: replaces.length + updates.length > 0 || providerVersionChanged(olds, news), replaces: replaces as string[], deleteBeforeReplace: true };
  },

  async create(inputs) {
    const settings = providerSettings();
    const client = makeClient(settings);
    const sfs = await client.getVolume(inputs.sfsId);
    if (!sfs || !aliveVolume(sfs)) {
      throw new Error(`SFS ${inputs.sfsId} does not exist at Verda: bring the month stack up first (scripts/pulumi up --stack <env>-month)`);
    }
    const id = `${inputs.sfsId}:${inputs.instanceId}`;
    if (attachedInstanceIds(sfs).includes(inputs.instanceId)) {
      return { id, outs: plain({ ...inputs, sharedByStack: false }) };
    }
    const instance = { id: inputs.instanceId, hostname: inputs.hostname };
    try {
      await client.volumeAction({ action: "attach", id: inputs.sfsId, instance_ids: [inputs.instanceId] });
    } catch (e) {
      const why = isVerdaApiError(e) ? `Verda ${e.status} ${e.code}: ${e.apiMessage}` : (e as Error).message;
      throw new Error(`Cannot share SFS ${sfs.name ?? inputs.sfsId} with instance ${inputs.hostname} (${inputs.instanceId}) through the API (${why}); nothing was mounted. Fix: ${consoleStep(sfs, instance)}`, { cause: e });
    }
    await pollUntil(
      () => client.getVolume(inputs.sfsId),
      (v: VerdaVolume | undefined) => !!v && attachedInstanceIds(v).includes(inputs.instanceId),
      (v) => (v ? `shared with ${attachedInstanceIds(v).join(", ") || "no instance"}` : "not visible"),
      { intervalMs: settings.pollIntervalMs, timeoutMs: settings.volumeTimeoutMs, what: `SFS ${inputs.sfsId} to list instance ${inputs.instanceId}. Fix: ${consoleStep(sfs, instance)}` },
    );
    return { id, outs: plain({ ...inputs, sharedByStack: true }) };
  },

  async read(id, props) {
    if (!props) return { id: "" };
    const sfs = await makeClient().getVolume(props.sfsId);
    // Gone or no longer shared: an empty id makes the next up share it again.
    if (!sfs || !aliveVolume(sfs) || !attachedInstanceIds(sfs).includes(props.instanceId)) return { id: "" };
    return { id, props };
  },

  async update(_id, olds, news) {
    return { outs: plain({ ...olds, ...pick(news, KEYS), providerVersion: news.providerVersion }) };
  },

  async delete() {
    // Never revoke (see the header): nothing to do.
  },
});

/** The instance is allowed on the SFS (Verda "share settings") before anything mounts it. */
export class SfsShare extends pulumi.dynamic.Resource {
  declare readonly sharedByStack: pulumi.Output<boolean>;

  constructor(name: string, args: SfsShareArgs, opts?: pulumi.CustomResourceOptions) {
    super(sfsShareProvider, name, { ...args, providerVersion: PROVIDER_VERSION, sharedByStack: undefined }, opts, "verda", "SfsShare");
  }
}
