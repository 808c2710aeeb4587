// Verda SSH key as a Pulumi dynamic resource (pulumi-nodejs:dynamic/verda:SshKey). Keys cannot be
// edited at Verda, so any change replaces the key.
import * as pulumi from "@pulumi/pulumi";
import { makeClient } from "./client-factory";
import { configureFromPulumi } from "./runtime";
import { changedKeys, type CheckFailure, pick, plain, UNKNOWN } from "./shared";
import { requireText } from "./validation";
import { keepProviderVersion, PROVIDER_VERSION, providerVersionChanged, withProviderVersion } from "./version";
import { cacheableProvider } from "../provider-code-cache";

export interface SshKeyInputs {
  /** Set by the class (PROVIDER_VERSION); a new version is an in-place update that calls no API. */
  providerVersion?: string;
  name: string;
  publicKey: string;
}

export interface SshKeyOutputs extends SshKeyInputs {
  keyId: string;
  fingerprint?: string;
}

export type SshKeyArgs = { [K in Exclude<keyof SshKeyInputs, "providerVersion">]: pulumi.Input<SshKeyInputs[K]> };

const KEYS = ["name", "publicKey"] as const satisfies readonly (keyof SshKeyInputs)[];

export function validateSshKeyInputs(news: SshKeyInputs): CheckFailure[] {
  const failures: CheckFailure[] = [];
  requireText("name", news.name, failures);
  requireText("publicKey", news.publicKey, failures);
  const key = news.publicKey;
  if (typeof key === "string" && key !== UNKNOWN && key.trim() !== "") {
    if (/PRIVATE KEY/.test(key)) {
      failures.push({ property: "publicKey", reason: "publicKey looks like a PRIVATE key; pass the contents of the .pub file instead" });
    } else if (!/^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp\d+|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) \S+/.test(key.trim())) {
      failures.push({ property: "publicKey", reason: 'publicKey must be an OpenSSH public key line, e.g. "ssh-ed25519 AAAA... user@host"' });
    }
  }
  return failures;
}

export const sshKeyProvider: pulumi.dynamic.ResourceProvider<SshKeyInputs, SshKeyOutputs> = cacheableProvider("infra/providers/ssh-key.ts#sshKeyProvider", {
  async configure(req) {
    await configureFromPulumi(req);
  },

  async check(_olds, news) {
    const inputs = withProviderVersion(pick(news, KEYS), news) as SshKeyInputs;
    if (typeof inputs.publicKey === "string" && inputs.publicKey !== UNKNOWN) inputs.publicKey = inputs.publicKey.trim();
    return { inputs, failures: validateSshKeyInputs(inputs) };
  },

  async diff(_id, olds, news) {
    const replaces = changedKeys<SshKeyInputs>(olds, news, KEYS) as string[];
    return { changes: replaces.length > 0 || providerVersionChanged(olds, news), replaces };
  },

  async create(inputs) {
    const client = makeClient();
    const id = await client.createSshKey({ name: inputs.name, key: inputs.publicKey });
    const key = await client.getSshKey(id);
    return { id, outs: plain(withProviderVersion({ name: inputs.name, publicKey: inputs.publicKey, keyId: id, fingerprint: key?.fingerprint ?? undefined }, inputs)) };
  },

  async read(id, props) {
    const key = await makeClient().getSshKey(id);
    if (!key) return { id: "" };
    const inputs = plain(keepProviderVersion({ name: key.name ?? props?.name, publicKey: (key.key ?? props?.publicKey)?.trim() }, props)) as SshKeyInputs;
    return { id, props: plain({ ...inputs, keyId: id, fingerprint: key.fingerprint ?? undefined }), inputs: inputs as SshKeyOutputs };
  },

  async update(_id, olds, news) {
    // Only reachable for a new provider version or no-op changes (every field replaces): no API call.
    return { outs: plain(withProviderVersion({ ...olds, ...pick(news, KEYS) }, news)) };
  },

  async delete(id) {
    await makeClient().deleteSshKey(id);
  },
});

export class SshKey extends pulumi.dynamic.Resource {
  declare readonly keyId: pulumi.Output<string>;
  declare readonly fingerprint: pulumi.Output<string | undefined>;
  declare readonly name: pulumi.Output<string>;
  declare readonly publicKey: pulumi.Output<string>;

  constructor(name: string, args: SshKeyArgs, opts?: pulumi.CustomResourceOptions) {
    super(sshKeyProvider, name, { ...args, providerVersion: PROVIDER_VERSION, keyId: undefined, fingerprint: undefined }, opts, "verda", "SshKey");
  }
}
