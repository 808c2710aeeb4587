// Verda container registry credentials as a Pulumi dynamic resource
// (pulumi-nodejs:dynamic/verda:RegistryCredentials): what a deployment pulls a private image with.
// Write-only at Verda like secrets (see secret-store.ts): any change replaces them under a new name.
import * as pulumi from "@pulumi/pulumi";
import type { RegistryCredentialsBody } from "../verda/types";
import { type CheckFailure, UNKNOWN } from "./shared";
import { storeProvider, type StoreOutputs } from "./secret-store";
import { checkOneOf } from "./validation";
import { PROVIDER_VERSION } from "./version";
import { cacheableProvider } from "../provider-code-cache";

export const REGISTRY_TYPES = ["verda", "gcr", "dockerhub", "ghcr", "aws-ecr", "scaleway", "custom"] as const satisfies readonly RegistryCredentialsBody["type"][];

export interface RegistryCredentialsInputs {
  providerVersion?: string;
  name: string;
  type: RegistryCredentialsBody["type"];
  username?: string;
  /** dockerhub / ghcr token (secret). */
  accessToken?: string;
  /** gcr service-account JSON (secret). */
  serviceAccountKey?: string;
  /** custom registries: a docker config.json (secret). */
  dockerConfigJson?: string;
  accessKeyId?: string;
  /** aws-ecr (secret). */
  secretAccessKey?: string;
  region?: string;
  ecrRepo?: string;
  scalewayDomain?: string;
  scalewayUuid?: string;
}
export type RegistryCredentialsOutputs = RegistryCredentialsInputs & StoreOutputs;

const SECRET_FIELDS = ["accessToken", "serviceAccountKey", "dockerConfigJson", "secretAccessKey"] as const;
const FIELD_MAP = {
  username: "username",
  accessToken: "access_token",
  serviceAccountKey: "service_account_key",
  dockerConfigJson: "docker_config_json",
  accessKeyId: "access_key_id",
  secretAccessKey: "secret_access_key",
  region: "region",
  ecrRepo: "ecr_repo",
  scalewayDomain: "scaleway_domain",
  scalewayUuid: "scaleway_uuid",
} as const satisfies Record<string, keyof RegistryCredentialsBody>;

/** Fields each registry type needs (per the document's field descriptions). */
const REQUIRED: Partial<Record<RegistryCredentialsBody["type"], (keyof typeof FIELD_MAP)[]>> = {
  dockerhub: ["username", "accessToken"],
  ghcr: ["username", "accessToken"],
  gcr: ["serviceAccountKey"],
  "aws-ecr": ["accessKeyId", "secretAccessKey", "region", "ecrRepo"],
  custom: ["dockerConfigJson"],
};

export const registryCredentialsProvider = cacheableProvider("infra/providers/registry-credentials.ts#registryCredentialsProvider", storeProvider<RegistryCredentialsInputs>({
  kind: "registry-credentials",
  keys: ["name", "type", ...(Object.keys(FIELD_MAP) as (keyof typeof FIELD_MAP)[])],
  validate(inputs: RegistryCredentialsInputs, failures: CheckFailure[]) {
    checkOneOf("type", inputs.type, REGISTRY_TYPES, failures);
    if (inputs.type === undefined) failures.push({ property: "type", reason: `type is required: one of ${REGISTRY_TYPES.join(", ")}` });
    for (const field of REQUIRED[inputs.type] ?? []) {
      const value = inputs[field];
      if (value !== UNKNOWN && (typeof value !== "string" || value === "")) {
        failures.push({ property: field, reason: `${field} is required for ${inputs.type} credentials${(SECRET_FIELDS as readonly string[]).includes(field) ? " (pass it as a Pulumi secret)" : ""}` });
      }
    }
  },
  async create(client, verdaName, inputs) {
    const body: RegistryCredentialsBody = { name: verdaName, type: inputs.type };
    for (const [input, field] of Object.entries(FIELD_MAP) as [keyof typeof FIELD_MAP, keyof RegistryCredentialsBody][]) {
      if (inputs[input] !== undefined) (body as unknown as Record<string, string>)[field] = inputs[input];
    }
    await client.serverless.createInStore("registry-credentials", body);
  },
}));

export type RegistryCredentialsArgs = { [K in keyof Omit<RegistryCredentialsInputs, "providerVersion">]: pulumi.Input<RegistryCredentialsInputs[K]> };

export class RegistryCredentials extends pulumi.dynamic.Resource {
  /** The name to give a deployment as `registryCredentials`. */
  declare readonly verdaName: pulumi.Output<string>;
  declare readonly name: pulumi.Output<string>;

  constructor(name: string, args: RegistryCredentialsArgs, opts?: pulumi.CustomResourceOptions) {
    const secrets = Object.fromEntries(SECRET_FIELDS.filter((f) => args[f] !== undefined).map((f) => [f, pulumi.secret(args[f]!)]));
    const secretOpts = { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), ...SECRET_FIELDS] };
    super(registryCredentialsProvider, name, { ...args, ...secrets, providerVersion: PROVIDER_VERSION, verdaName: undefined }, secretOpts, "verda", "RegistryCredentials");
  }
}
