// Verda startup script as a Pulumi dynamic resource (pulumi-nodejs:dynamic/verda:StartupScript).
// Scripts cannot be edited at Verda, so any change replaces the script (and instances using it).
import * as pulumi from "@pulumi/pulumi";
import { makeClient } from "./client-factory";
import { configureFromPulumi } from "./runtime";
import { changedKeys, type CheckFailure, pick, plain } from "./shared";
import { requireText } from "./validation";
import { keepProviderVersion, PROVIDER_VERSION, providerVersionChanged, withProviderVersion } from "./version";
import { cacheableProvider } from "../provider-code-cache";

export interface StartupScriptInputs {
  /** Set by the class (PROVIDER_VERSION); a new version is an in-place update that calls no API. */
  providerVersion?: string;
  name: string;
  script: string;
}

export interface StartupScriptOutputs extends StartupScriptInputs {
  scriptId: string;
}

export type StartupScriptArgs = { [K in Exclude<keyof StartupScriptInputs, "providerVersion">]: pulumi.Input<StartupScriptInputs[K]> };

const KEYS = ["name", "script"] as const satisfies readonly (keyof StartupScriptInputs)[];

export function validateStartupScriptInputs(news: StartupScriptInputs): CheckFailure[] {
  const failures: CheckFailure[] = [];
  requireText("name", news.name, failures);
  requireText("script", news.script, failures);
  return failures;
}

export const startupScriptProvider: pulumi.dynamic.ResourceProvider<StartupScriptInputs, StartupScriptOutputs> = cacheableProvider("infra/providers/startup-script.ts#startupScriptProvider", {
  async configure(req) {
    await configureFromPulumi(req);
  },

  async check(_olds, news) {
    const inputs = withProviderVersion(pick(news, KEYS), news) as StartupScriptInputs;
    return { inputs, failures: validateStartupScriptInputs(inputs) };
  },

  async diff(_id, olds, news) {
    const replaces = changedKeys<StartupScriptInputs>(olds, news, KEYS) as string[];
    return { changes: replaces.length > 0 || providerVersionChanged(olds, news), replaces };
  },

  async create(inputs) {
    const id = await makeClient().createStartupScript({ name: inputs.name, script: inputs.script });
    return { id, outs: plain(withProviderVersion({ name: inputs.name, script: inputs.script, scriptId: id }, inputs)) };
  },

  async read(id, props) {
    const script = await makeClient().getStartupScript(id);
    if (!script) return { id: "" };
    const inputs = plain(keepProviderVersion({ name: script.name ?? props?.name, script: script.script ?? props?.script }, props)) as StartupScriptInputs;
    return { id, props: plain({ ...inputs, scriptId: id }), inputs: inputs as StartupScriptOutputs };
  },

  async update(_id, olds, news) {
    // Only reachable for a new provider version or no-op changes (every field replaces): no API call.
    return { outs: plain(withProviderVersion({ ...olds, ...pick(news, KEYS) }, news)) };
  },

  async delete(id) {
    await makeClient().deleteStartupScript(id);
  },
});

export class StartupScript extends pulumi.dynamic.Resource {
  declare readonly scriptId: pulumi.Output<string>;
  declare readonly name: pulumi.Output<string>;
  declare readonly script: pulumi.Output<string>;

  constructor(name: string, args: StartupScriptArgs, opts?: pulumi.CustomResourceOptions) {
    super(startupScriptProvider, name, { ...args, providerVersion: PROVIDER_VERSION, scriptId: undefined }, opts, "verda", "StartupScript");
  }
}
