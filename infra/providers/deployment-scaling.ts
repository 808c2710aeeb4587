// The day's scaling of a serverless deployment the month stack owns, as a Pulumi dynamic resource
// (pulumi-nodejs:dynamic/verda:DeploymentScaling). Two stacks share one deployment: the month stack owns
// the deployment itself (created at zero replicas, `ignoreChanges: ["scaling"]`), the day stack owns this
// resource. create/update PATCH the deployment's scaling (one PATCH); delete PATCHes `restScaling` (zero
// replicas) back. This provider never deletes a deployment: no day destroy can remove the month's workers.
import * as pulumi from "@pulumi/pulumi";
import { isVerdaApiError } from "../verda/errors";
import { makeClient } from "./client-factory";
import { normalize, scalingFromApi, scalingToApi, type DeploymentShape, type ScalingInput } from "./container-shape";
import { configureFromPulumi } from "./runtime";
import { changedKeys, type CheckFailure, containsUnknown, pick, plain, UNKNOWN } from "./shared";
import { keepProviderVersion, PROVIDER_VERSION, providerVersionChanged, withProviderVersion } from "./version";
import { cacheableProvider } from "../provider-code-cache";

export interface DeploymentScalingInputs {
  /** Set by the class (PROVIDER_VERSION). */
  providerVersion?: string;
  /** The deployment's name (the month stack's output). */
  deployment: string;
  /** The scaling while this resource exists (the workshop hours). */
  scaling: ScalingInput;
  /** What delete puts back: zero replicas (min 0, max 0) unless set. */
  restScaling?: ScalingInput;
}

const KEYS = ["deployment", "scaling", "restScaling"] as const satisfies readonly (keyof DeploymentScalingInputs)[];
const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Zero replicas with the day's other settings (delays and thresholds stay as the day had them). */
export function zeroScaling(day: ScalingInput): ScalingInput {
  return { ...day, minReplicas: 0, maxReplicas: 0 };
}

const withDefaults = (s: ScalingInput) => normalize({ scaling: s } as DeploymentShape).scaling;

function checkScaling(property: string, s: ScalingInput | undefined, failures: CheckFailure[]): void {
  if (s === undefined || containsUnknown(s)) return;
  const whole = (v: unknown) => typeof v === "number" && Number.isInteger(v) && v >= 0;
  if (!whole(s.minReplicas) || !whole(s.maxReplicas) || s.minReplicas > s.maxReplicas) {
    failures.push({ property, reason: `${property}.minReplicas (${s.minReplicas}) and maxReplicas (${s.maxReplicas}) must be whole numbers with 0 ≤ min ≤ max` });
  }
}

export const deploymentScalingProvider: pulumi.dynamic.ResourceProvider<DeploymentScalingInputs, DeploymentScalingInputs> = cacheableProvider("infra/providers/deployment-scaling.ts#deploymentScalingProvider", {
  async configure(req) {
    await configureFromPulumi(req);
  },

  async check(_olds, news) {
    const failures: CheckFailure[] = [];
    if (news.deployment !== UNKNOWN && (typeof news.deployment !== "string" || !NAME_RE.test(news.deployment))) {
      failures.push({ property: "deployment", reason: `deployment ${JSON.stringify(news.deployment)} must be a deployment name (the month stack's serverlessDeployments output)` });
    }
    if (!news.scaling) failures.push({ property: "scaling", reason: "scaling is required: { minReplicas, maxReplicas }" });
    checkScaling("scaling", news.scaling, failures);
    checkScaling("restScaling", news.restScaling, failures);
    const inputs = withProviderVersion(pick(news, KEYS), news) as DeploymentScalingInputs;
    if (news.scaling && !containsUnknown(news.scaling)) {
      inputs.scaling = withDefaults(news.scaling);
      inputs.restScaling = withDefaults(news.restScaling && !containsUnknown(news.restScaling) ? news.restScaling : zeroScaling(news.scaling));
    }
    return { inputs: plain(inputs), failures };
  },

  async diff(_id, olds, news) {
    const changed = changedKeys<DeploymentScalingInputs>(olds, news, KEYS) as string[];
    return { changes: changed.length > 0 || providerVersionChanged(olds, news), replaces: changed.filter((k) => k === "deployment"), deleteBeforeReplace: false };
  },

  async create(inputs) {
    const api = makeClient().serverless;
    if (!(await api.getDeployment(inputs.deployment))) {
      throw new Error(`deployment ${inputs.deployment} does not exist at Verda: bring the month stack up first (scripts/pulumi up --stack <env>-month)`);
    }
    await api.patchScaling(inputs.deployment, scalingToApi(inputs.scaling));
    return { id: inputs.deployment, outs: plain(inputs) };
  },

  async read(id, props) {
    const live = await makeClient().serverless.getScaling(id);
    if (!live) return { id: "" };
    const current = plain(keepProviderVersion({ ...pick(props ?? ({} as DeploymentScalingInputs), KEYS), deployment: id, scaling: withDefaults(scalingFromApi(live)) }, props)) as DeploymentScalingInputs;
    return { id, props: current, inputs: current };
  },

  async update(id, olds, news) {
    if (changedKeys<DeploymentScalingInputs>(olds, news, ["scaling"]).length > 0) await makeClient().serverless.patchScaling(id, scalingToApi(news.scaling));
    return { outs: plain(news) };
  },

  async delete(id, props) {
    // Back to rest with one PATCH; a deployment the month stack already deleted (404) has nothing to scale.
    try {
      await makeClient().serverless.patchScaling(id, scalingToApi(props.restScaling ?? zeroScaling(props.scaling)));
    } catch (e) {
      if (!isVerdaApiError(e, 404)) throw e;
    }
  },
});

export interface DeploymentScalingArgs {
  /** The deployment's name (owned by another stack). */
  deployment: pulumi.Input<string>;
  /** The scaling while this resource exists. */
  scaling: pulumi.Input<ScalingInput>;
  /** What delete puts back (default: min 0, max 0, the rest as `scaling`). */
  restScaling?: pulumi.Input<ScalingInput>;
}

export class DeploymentScaling extends pulumi.dynamic.Resource {
  declare readonly deployment: pulumi.Output<string>;
  declare readonly scaling: pulumi.Output<ScalingInput>;

  constructor(name: string, args: DeploymentScalingArgs, opts?: pulumi.CustomResourceOptions) {
    super(deploymentScalingProvider, name, { ...args, providerVersion: PROVIDER_VERSION }, opts, "verda", "DeploymentScaling");
  }
}
