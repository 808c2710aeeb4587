// InstanceGuard (pulumi-nodejs:dynamic/verda:InstanceGuard): a resource with nothing at Verda whose
// `delete` stops a destroy when the worker instance can no longer be backed up.
//
// Why: the backup-before-delete hook runs its backup ON the instance over SSH. When the instance is
// already gone (spot eviction, credit exhausted, deleted in the console) or not running, the hook
// can only dial for minutes and fail, and the usual way out (`pulumi state delete` of the hook) lets
// the destroy go on to delete the scratch volume: the users' files of the day, never backed up.
// The guard depends on that hook, so Pulumi deletes it first; its delete asks Verda for the instance
// and lets the destroy continue only when the instance is `running`. Any other answer, including an
// API that does not answer, stops the destroy before anything is deleted, with a message naming the
// instance, the scratch volume that still holds the files, and the way out (`npm run rescue`).
//
// Running only: a stopped (`offline`) instance holds its volumes but cannot be reached by SSH, and a
// provisioning or failed one has nothing to back up from; each stops the destroy with its own advice.
import * as pulumi from "@pulumi/pulumi";
import { isVerdaApiError, isVerdaNetworkError } from "../verda/errors";
import { makeClient } from "./client-factory";
import { configureFromPulumi } from "./runtime";
import { changedKeys, type CheckFailure, pick, plain } from "./shared";
import { requireText } from "./validation";
import { PROVIDER_VERSION } from "./version";
import { instanceGone } from "../verda/statuses";
import { cacheableProvider } from "../provider-code-cache";

export interface InstanceGuardInputs {
  /** The Verda instance the backup hook runs on. */
  instanceId: string;
  /** The scratch volume holding the users' inputs and outputs (named in the message). */
  scratchVolumeId: string;
  /** The day stack (for the rescue command in the message). */
  stack: string;
  /** The provider code's version (infra/providers/version.ts); a new version updates in place. */
  providerVersion: string;
}

export type InstanceGuardOutputs = InstanceGuardInputs;

export type InstanceGuardArgs = { [K in Exclude<keyof InstanceGuardInputs, "providerVersion">]: pulumi.Input<InstanceGuardInputs[K]> };

const KEYS = ["instanceId", "scratchVolumeId", "stack", "providerVersion"] as const satisfies readonly (keyof InstanceGuardInputs)[];


export function validateInstanceGuardInputs(news: InstanceGuardInputs): CheckFailure[] {
  const failures: CheckFailure[] = [];
  for (const key of KEYS) requireText(key, news[key], failures);
  return failures;
}

const NOTHING_DELETED = (g: InstanceGuardInputs) =>
  `NOTHING was deleted: the scratch volume ${g.scratchVolumeId} still holds the users' inputs and outputs, and the destroy stopped before any backup or delete ran.`;
const RESCUE = (g: InstanceGuardInputs) =>
  `Fix: \`npm run rescue -- --stack ${g.stack}\` attaches the scratch to a temporary CPU instance, backs it up to R2 and verifies it, then the destroy can complete (docs/rescue.md). Do NOT \`pulumi state delete\` the backup hook: the destroy would then delete the scratch without a backup.`;

/** Why the backup cannot run on this instance, or undefined when it can (status `running`). */
export function refusalFor(g: InstanceGuardInputs, status: string | undefined): string | undefined {
  if (status === "running") return undefined;
  const head = `Destroy stopped: the worker instance ${g.instanceId}`;
  if (status === undefined || instanceGone(status)) {
    const what = status === undefined ? "no longer exists at Verda (404)" : `is ${status} at Verda`;
    return `${head} ${what} (spot eviction, credit exhausted, or deleted in the console), so its backup-before-delete cannot run. ${NOTHING_DELETED(g)} ${RESCUE(g)}`;
  }
  if (status === "offline") {
    return `${head} is offline (shut down), so its backup-before-delete cannot reach it over SSH. ${NOTHING_DELETED(g)} Fix: start it (Verda console, or the instance action "start") and run the destroy again; or \`npm run rescue -- --stack ${g.stack}\`.`;
  }
  return `${head} is in status "${status}", not running, so its backup-before-delete cannot run. ${NOTHING_DELETED(g)} Fix: wait until it is running and run the destroy again; if it never runs, \`npm run rescue -- --stack ${g.stack}\`.`;
}

/** The message when Verda could not be asked: never go on unverified. */
export function unverifiedMessage(g: InstanceGuardInputs, error: unknown): string {
  const reason = isVerdaApiError(error) ? `${error.status} ${error.code}: ${error.apiMessage}` : isVerdaNetworkError(error) ? error.message : String((error as Error)?.message ?? error);
  return `Destroy stopped: could not ask Verda whether the worker instance ${g.instanceId} is running (${reason}), so its backup was not attempted. ${NOTHING_DELETED(g)} Fix: run the destroy again once the Verda API answers (check verda:clientId/clientSecret if it refused the credentials).`;
}

export const instanceGuardProvider: pulumi.dynamic.ResourceProvider<InstanceGuardInputs, InstanceGuardOutputs> = cacheableProvider("infra/providers/instance-guard.ts#instanceGuardProvider", {
  async configure(req) {
    await configureFromPulumi(req);
  },

  async check(_olds, news) {
    const inputs = pick(news, KEYS) as InstanceGuardInputs;
    return { inputs, failures: validateInstanceGuardInputs(inputs) };
  },

  async diff(_id, olds, news) {
    const changed = changedKeys<InstanceGuardInputs>(olds, news, KEYS) as string[];
    // A new instance is a new guard (replaced with the hooks); everything else is recorded in place.
    return { changes: changed.length > 0, replaces: changed.includes("instanceId") ? ["instanceId"] : [], deleteBeforeReplace: true };
  },

  async create(inputs) {
    return { id: `guard-${inputs.instanceId}`, outs: plain(pick(inputs, KEYS) as InstanceGuardInputs) };
  },

  async update(_id, _olds, news) {
    return { outs: plain(pick(news, KEYS) as InstanceGuardInputs) };
  },

  async delete(_id, props) {
    const guard = pick(props, KEYS) as InstanceGuardInputs;
    let status: string | undefined;
    try {
      const instance = await makeClient().getInstance(guard.instanceId);
      status = instance ? String(instance.status) : undefined;
    } catch (e) {
      throw new Error(unverifiedMessage(guard, e));
    }
    const refusal = refusalFor(guard, status);
    if (refusal) throw new Error(refusal);
  },
});

/** Stops a destroy before the backup hook when the instance cannot be backed up (see the header). */
export class InstanceGuard extends pulumi.dynamic.Resource {
  declare readonly instanceId: pulumi.Output<string>;
  declare readonly scratchVolumeId: pulumi.Output<string>;

  constructor(name: string, args: InstanceGuardArgs, opts?: pulumi.CustomResourceOptions) {
    super(instanceGuardProvider, name, { ...args, providerVersion: PROVIDER_VERSION }, opts, "verda", "InstanceGuard");
  }
}
