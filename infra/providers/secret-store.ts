// Shared provider logic for Verda's write-only stores (secrets, file secrets, registry credentials).
// The API has create, list (names only) and delete; no update. Each resource therefore gets a Verda name
// `<name>-<6 hex>` and any change of content is a replace: the new entry is created under a new name,
// deployments that reference it are patched to the new name, then the old entry is deleted (it is no longer
// in use, so Verda's "in use" refusal never fires and no `force` is ever sent). The secret values live only
// in the request body of their own endpoint and, encrypted, in state (the classes mark them as secret outputs).
import type * as pulumi from "@pulumi/pulumi";
import type { SecretStoreKind } from "../verda/serverless";
import { makeClient } from "./client-factory";
import { configureFromPulumi } from "./runtime";
import { changedKeys, type CheckFailure, pick, plain, UNKNOWN } from "./shared";
import { keepProviderVersion, providerVersionChanged, withProviderVersion } from "./version";

/** Leaves room for the "-xxxxxx" suffix inside Verda's 63 characters. */
const BASE_NAME_RE = /^[a-z0-9]([a-z0-9-]{0,54}[a-z0-9])?$/;

export interface StoreInputs {
  providerVersion?: string;
  name: string;
}

export interface StoreOutputs {
  /** The name at Verda (`<name>-<suffix>`), also the resource id; deployments reference this. */
  verdaName: string;
}

export interface StoreSpec<I extends StoreInputs> {
  kind: SecretStoreKind;
  /** Input keys besides providerVersion; a change of any of them replaces the entry. */
  keys: readonly (keyof I & string)[];
  validate(inputs: I, failures: CheckFailure[]): void;
  /** The create body for this store (the only place a secret value is sent). */
  create(client: ReturnType<typeof makeClient>, verdaName: string, inputs: I): Promise<void>;
  /** The inputs as the listed entry shows them, or undefined when it matches the stored ones. */
  liveInputs?(listed: Record<string, unknown>, stored: I): I | undefined;
}

export function checkBaseName(name: unknown, failures: CheckFailure[]): void {
  if (name === UNKNOWN) return;
  if (typeof name !== "string" || !BASE_NAME_RE.test(name)) {
    failures.push({ property: "name", reason: `name ${JSON.stringify(name)} must be 1-56 lowercase letters, digits or '-' (not at either end), e.g. "hf-token"; Verda adds a 7-character suffix` });
  }
}

function suffix(): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- inside the method: serialization-safe
  const { randomBytes } = require("node:crypto") as typeof import("node:crypto");
  return randomBytes(3).toString("hex");
}

export function storeProvider<I extends StoreInputs>(spec: StoreSpec<I>): pulumi.dynamic.ResourceProvider<I, I & StoreOutputs> {
  return {
    async configure(req) {
      await configureFromPulumi(req);
    },

    async check(_olds, news) {
      const inputs = withProviderVersion(pick(news, spec.keys), news) as I;
      const failures: CheckFailure[] = [];
      checkBaseName(inputs.name, failures);
      spec.validate(inputs, failures);
      return { inputs, failures };
    },

    async diff(_id, olds, news) {
      const replaces = changedKeys<I>(olds, news, spec.keys) as string[];
      return { changes: replaces.length > 0 || providerVersionChanged(olds, news), replaces, deleteBeforeReplace: false };
    },

    async create(inputs) {
      const verdaName = `${inputs.name}-${suffix()}`;
      await spec.create(makeClient(), verdaName, inputs);
      return { id: verdaName, outs: plain(withProviderVersion({ ...pick(inputs, spec.keys), verdaName }, inputs)) as I & StoreOutputs };
    },

    async read(id, props) {
      const listed = (await makeClient().serverless.listStore<Record<string, unknown>>(spec.kind)).find((entry) => entry.name === id);
      if (!listed) return { id: "" };
      // Values cannot be read back: the stored ones stand. What can be listed (a file secret's file names)
      // replaces the stored inputs when it differs, so a console edit shows as drift and `up` recreates it.
      const stored = pick((props ?? {}) as I, spec.keys) as I;
      const current = spec.liveInputs?.(listed, stored) ?? stored;
      const inputs = plain(keepProviderVersion(current, props)) as I;
      return { id, props: plain({ ...(props as object), ...current, verdaName: id }) as I & StoreOutputs, inputs: inputs as I & StoreOutputs };
    },

    async update(_id, olds, news) {
      // Only a new provider version reaches here (every content change replaces): no API call.
      return { outs: plain(withProviderVersion({ ...olds, ...pick(news, spec.keys) }, news)) };
    },

    async delete(id) {
      await makeClient().serverless.deleteFromStore(spec.kind, id);
    },
  };
}
