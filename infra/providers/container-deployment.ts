// Verda serverless container deployment as a Pulumi dynamic resource
// (pulumi-nodejs:dynamic/verda:ContainerDeployment). Everything Verda can change in place is updated in
// place: scaling with one PATCH …/scaling; image, command, env, mounts, health check, compute, spot and
// registry with one PATCH of the deployment. Only the name (immutable at Verda) or a different number of
// containers (PATCH addresses existing containers by name) replaces it. `read` maps the live deployment
// back to inputs, so a console edit shows in `pulumi preview --refresh` and the next `up` reverts it.
import * as pulumi from "@pulumi/pulumi";
import type { ContainerDeployment as LiveDeployment } from "../verda/types";
import { makeClient } from "./client-factory";
import { containerToApi, type DeploymentShape, fromApi, normalize, registryToApi, scalingToApi } from "./container-shape";
import { validateDeployment } from "./container-validation";
import { configureFromPulumi } from "./runtime";
import { changedKeys, containsUnknown, pick, plain } from "./shared";
import { keepProviderVersion, PROVIDER_VERSION, providerVersionChanged, withProviderVersion } from "./version";
import { cacheableProvider } from "../provider-code-cache";

export type { ContainerInput, MountInput, ScalingInput } from "./container-shape";

export interface ContainerDeploymentInputs extends DeploymentShape {
  /** Set by the class (PROVIDER_VERSION); a new version is an in-place update that calls no API. */
  providerVersion?: string;
}

export interface ContainerDeploymentOutputs extends ContainerDeploymentInputs {
  /** https://containers.datacrunch.io/<name>: the queue manager's target. */
  endpointBaseUrl: string;
  /** Verda's container names, in order (PATCH addresses containers by them). */
  containerNames: string[];
  createdAt: string;
}

const KEYS = ["name", "compute", "isSpot", "registryCredentials", "containers", "scaling"] as const satisfies readonly (keyof ContainerDeploymentInputs)[];
const DEPLOYMENT_KEYS: readonly string[] = ["compute", "isSpot", "registryCredentials", "containers"];

function outputsFrom(live: LiveDeployment, inputs: ContainerDeploymentInputs): ContainerDeploymentOutputs {
  return plain(
    withProviderVersion(
      { ...pick(inputs, KEYS), endpointBaseUrl: live.endpoint_base_url, containerNames: live.containers.map((c) => c.name), createdAt: live.created_at },
      inputs,
    ),
  ) as ContainerDeploymentOutputs;
}

/** Why a change cannot be made in place, for the diff's stderr line; undefined when it can. */
export function replaceReason(olds: Partial<ContainerDeploymentInputs>, news: ContainerDeploymentInputs): string | undefined {
  if (!containsUnknown(news.name) && olds.name !== news.name) return "name is immutable at Verda";
  const before = olds.containers?.length;
  const after = Array.isArray(news.containers) ? news.containers.length : undefined;
  if (before !== undefined && after !== undefined && before !== after) return `the number of containers changes (${before} → ${after}) and Verda's PATCH can only change existing containers`;
  return undefined;
}

function createBody(inputs: ContainerDeploymentInputs) {
  return {
    name: inputs.name,
    is_spot: inputs.isSpot ?? false,
    is_verda_io: false,
    compute: inputs.compute,
    container_registry_settings: registryToApi(inputs.registryCredentials),
    containers: inputs.containers.map(containerToApi),
    scaling: scalingToApi(inputs.scaling),
  };
}

/** Tracks a deployment found under the wanted name, brought to the inputs with at most one PATCH of each kind. */
async function adoptExisting(found: LiveDeployment, inputs: ContainerDeploymentInputs, why: string): Promise<{ id: string; outs: ContainerDeploymentOutputs }> {
  const api = makeClient().serverless;
  process.stderr.write(`warning: deployment ${inputs.name} ${why}: tracked as this resource and brought to the configured settings.\n`);
  const current = normalize(fromApi(found, await api.getScaling(inputs.name), inputs.scaling));
  let live = found;
  if (changedKeys<ContainerDeploymentInputs>(current, inputs, DEPLOYMENT_KEYS as (keyof ContainerDeploymentInputs)[]).length > 0) {
    const names = found.containers.map((c) => c.name);
    live = await api.patchDeployment(inputs.name, {
      compute: inputs.compute,
      is_spot: inputs.isSpot ?? false,
      container_registry_settings: registryToApi(inputs.registryCredentials),
      containers: inputs.containers.map((c, i) => ({ ...containerToApi(c), name: names[i] ?? "" })),
    });
  }
  if (changedKeys<ContainerDeploymentInputs>(current, inputs, ["scaling"]).length > 0) await api.patchScaling(inputs.name, scalingToApi(inputs.scaling));
  return { id: inputs.name, outs: outputsFrom(live, inputs) };
}

export const containerDeploymentProvider: pulumi.dynamic.ResourceProvider<ContainerDeploymentInputs, ContainerDeploymentOutputs> = cacheableProvider("infra/providers/container-deployment.ts#containerDeploymentProvider", {
  async configure(req) {
    await configureFromPulumi(req);
  },

  async check(_olds, news) {
    const inputs = normalize(withProviderVersion(pick(news, KEYS), news) as ContainerDeploymentInputs);
    return { inputs, failures: validateDeployment(inputs) };
  },

  async diff(_id, olds, news) {
    const changed = changedKeys<ContainerDeploymentInputs>(olds, news, KEYS) as string[];
    const reason = changed.length > 0 ? replaceReason(olds, news) : undefined;
    if (reason) {
      // The dynamic-provider host has no pulumi.log: stderr reaches preview and up.
      process.stderr.write(`warning: deployment ${olds.name}: replaced because ${reason}. Its replicas stop while the new one starts.\n`);
    }
    const replaces = reason ? changed.filter((key) => key === "name" || key === "containers") : [];
    return { changes: changed.length > 0 || providerVersionChanged(olds, news), replaces, deleteBeforeReplace: reason !== undefined && olds.name === news.name };
  },

  async create(inputs) {
    const api = makeClient().serverless;
    // Names are unique at Verda. A deployment already under this name is one an earlier create made before
    // its answer was lost (a 5xx, a dropped connection): take it over instead of failing or making a second.
    const earlier = await api.getDeployment(inputs.name);
    if (earlier) return adoptExisting(earlier, inputs, "already existed at Verda (an earlier create whose answer was lost, or a console edit)");
    try {
      const live = await api.createDeployment(createBody(inputs));
      return { id: inputs.name, outs: outputsFrom(live, inputs) };
    } catch (e) {
      // "Created, then 5xx": the POST may have taken effect (and a retried POST then answers 409).
      const after = await api.getDeployment(inputs.name).catch(() => undefined);
      if (!after) throw e;
      return adoptExisting(after, inputs, `was created although the create answered an error (${(e as Error).message})`);
    }
  },

  async read(id, props) {
    const api = makeClient().serverless;
    const live = await api.getDeployment(id);
    if (!live) return { id: "" };
    const scaling = await api.getScaling(id);
    const current = normalize(fromApi(live, scaling, props?.scaling ?? { minReplicas: 0, maxReplicas: 0 }));
    const inputs = plain(keepProviderVersion(current, props)) as ContainerDeploymentInputs;
    const outs = { ...outputsFrom(live, inputs), ...(props?.providerVersion ? {} : { providerVersion: undefined }) };
    return { id, props: plain(outs) as ContainerDeploymentOutputs, inputs: inputs as ContainerDeploymentOutputs };
  },

  async update(id, olds, news) {
    const api = makeClient().serverless;
    const changed = changedKeys<ContainerDeploymentInputs>(olds, news, KEYS) as string[];
    let live: LiveDeployment | undefined;
    if (changed.some((key) => DEPLOYMENT_KEYS.includes(key))) {
      const names = olds.containerNames ?? [];
      live = await api.patchDeployment(id, {
        compute: news.compute,
        is_spot: news.isSpot ?? false,
        container_registry_settings: registryToApi(news.registryCredentials),
        containers: news.containers.map((c, i) => ({ ...containerToApi(c), name: names[i] ?? "" })),
      });
    }
    if (changed.includes("scaling")) await api.patchScaling(id, scalingToApi(news.scaling));
    const endpoint = live?.endpoint_base_url ?? olds.endpointBaseUrl;
    const containerNames = live?.containers.map((c) => c.name) ?? olds.containerNames;
    return { outs: plain(withProviderVersion({ ...pick(news, KEYS), endpointBaseUrl: endpoint, containerNames, createdAt: olds.createdAt }, news)) as ContainerDeploymentOutputs };
  },

  async delete(id) {
    await makeClient().serverless.deleteDeployment(id);
  },
});

/** An input whose nested values may also be outputs (e.g. `secretEnv: { HF_TOKEN: secret.verdaName }`). */
type DeepInput<T> = T extends (infer U)[] ? pulumi.Input<DeepInput<U>[]> : T extends object ? pulumi.Input<{ [K in keyof T]: DeepInput<T[K]> }> : pulumi.Input<T>;

export type ContainerDeploymentArgs = { [K in keyof Omit<ContainerDeploymentInputs, "providerVersion">]: DeepInput<ContainerDeploymentInputs[K]> };

export class ContainerDeployment extends pulumi.dynamic.Resource {
  declare readonly endpointBaseUrl: pulumi.Output<string>;
  declare readonly containerNames: pulumi.Output<string[]>;
  declare readonly name: pulumi.Output<string>;

  constructor(name: string, args: ContainerDeploymentArgs, opts?: pulumi.CustomResourceOptions) {
    super(containerDeploymentProvider, name, { ...args, providerVersion: PROVIDER_VERSION, endpointBaseUrl: undefined, containerNames: undefined, createdAt: undefined }, opts, "verda", "ContainerDeployment");
  }
}
