// Verda serverless secrets as Pulumi dynamic resources: `Secret` (pulumi-nodejs:dynamic/verda:Secret), one
// value a deployment reads as an environment variable of type `secret`, and `FileSecret`
// (…/verda:FileSecret), files a deployment mounts. See secret-store.ts for naming, replacement and secrecy.
import * as pulumi from "@pulumi/pulumi";
import { type CheckFailure, UNKNOWN } from "./shared";
import { storeProvider, type StoreOutputs } from "./secret-store";
import { PROVIDER_VERSION } from "./version";
import { cacheableProvider } from "../provider-code-cache";

export interface SecretInputs {
  /** Set by the class (PROVIDER_VERSION); a new version is an in-place update that calls no API. */
  providerVersion?: string;
  /** Base name; Verda's name is `<name>-<6 hex>` (output `verdaName`). */
  name: string;
  /** The secret value. Pass a Pulumi secret (config.requireSecret); it is sent only to POST /secrets. */
  value: string;
}
export type SecretOutputs = SecretInputs & StoreOutputs;

export const secretProvider = cacheableProvider("infra/providers/secret.ts#secretProvider", storeProvider<SecretInputs>({
  kind: "secret",
  keys: ["name", "value"],
  validate(inputs: SecretInputs, failures: CheckFailure[]) {
    if (inputs.value !== UNKNOWN && (typeof inputs.value !== "string" || inputs.value === "")) {
      failures.push({ property: "value", reason: "value is required: set it with `pulumi config set --secret <key> <value>` and pass config.requireSecret(<key>)" });
    }
  },
  async create(client, verdaName, inputs) {
    await client.serverless.createInStore("secret", { name: verdaName, value: inputs.value });
  },
}));

export interface SecretArgs {
  /** Base name, 1-56 lowercase letters, digits or '-'. */
  name: pulumi.Input<string>;
  /** The value, as a Pulumi secret. */
  value: pulumi.Input<string>;
}

export class Secret extends pulumi.dynamic.Resource {
  /** The name to reference from a deployment (`secretEnv`). */
  declare readonly verdaName: pulumi.Output<string>;
  declare readonly name: pulumi.Output<string>;

  constructor(name: string, args: SecretArgs, opts?: pulumi.CustomResourceOptions) {
    const secretOpts = { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "value"] };
    super(secretProvider, name, { name: args.name, value: pulumi.secret(args.value), providerVersion: PROVIDER_VERSION, verdaName: undefined }, secretOpts, "verda", "Secret");
  }
}

export interface FileSecretInputs {
  providerVersion?: string;
  name: string;
  /** File name → contents (UTF-8 text); sent base64-encoded only to POST /file-secrets. */
  files: Record<string, string>;
}
export type FileSecretOutputs = FileSecretInputs & StoreOutputs;

export const fileSecretProvider = cacheableProvider("infra/providers/secret.ts#fileSecretProvider", storeProvider<FileSecretInputs>({
  kind: "file-secret",
  keys: ["name", "files"],
  validate(inputs: FileSecretInputs, failures: CheckFailure[]) {
    const files = inputs.files as unknown;
    if (files === UNKNOWN) return;
    if (!files || typeof files !== "object" || Array.isArray(files) || Object.keys(files).length === 0) {
      failures.push({ property: "files", reason: 'files must map at least one file name to its contents, e.g. { "token.txt": config.requireSecret("token") }' });
      return;
    }
    for (const fileName of Object.keys(files)) {
      if (fileName.includes("/") || fileName === "") failures.push({ property: "files", reason: `file name ${JSON.stringify(fileName)} must be a plain name without '/'` });
    }
  },
  async create(client, verdaName, inputs) {
    const files = Object.entries(inputs.files).map(([file_name, text]) => ({ file_name, base64_content: Buffer.from(text, "utf8").toString("base64") }));
    await client.serverless.createInStore("file-secret", { name: verdaName, files });
  },
  liveInputs(listed, stored) {
    const live = Array.isArray(listed.file_names) ? (listed.file_names as string[]) : [];
    if (JSON.stringify([...live].sort()) === JSON.stringify(Object.keys(stored.files ?? {}).sort())) return undefined;
    // Contents cannot be read back: files changed at Verda show with empty contents.
    return { ...stored, files: Object.fromEntries(live.map((fileName) => [fileName, stored.files?.[fileName] ?? ""])) };
  },
}));

export interface FileSecretArgs {
  name: pulumi.Input<string>;
  /** File name → contents; the whole map is kept secret. */
  files: pulumi.Input<Record<string, pulumi.Input<string>>>;
}

export class FileSecret extends pulumi.dynamic.Resource {
  /** The name to reference from a deployment's `secret` mount. */
  declare readonly verdaName: pulumi.Output<string>;
  declare readonly name: pulumi.Output<string>;

  constructor(name: string, args: FileSecretArgs, opts?: pulumi.CustomResourceOptions) {
    const secretOpts = { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "files"] };
    super(fileSecretProvider, name, { name: args.name, files: pulumi.secret(args.files), providerVersion: PROVIDER_VERSION, verdaName: undefined }, secretOpts, "verda", "FileSecret");
  }
}
