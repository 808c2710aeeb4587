// Runs the Pulumi program under mocks and records every resource: its type, name, inputs as the
// engine would receive them, its parent and its options (protect, ignoreChanges, dependsOn, ...).
import * as pulumi from "@pulumi/pulumi";
import { FIRST_CONTACT_HOST_KEY, WORKER_HOST_KEY } from "./fixtures";

export interface Recorded {
  type: string;
  name: string;
  /** Inputs as the mock monitor saw them (secrets wrapped). */
  inputs: Record<string, unknown>;
  opts: pulumi.CustomResourceOptions & pulumi.ComponentResourceOptions;
  parentName?: string;
  resource?: pulumi.Resource;
}

export interface ProgramRun {
  resources: Recorded[];
  outputs: Record<string, pulumi.Output<unknown>>;
  byName(name: string): Recorded;
  named(prefix: string): Recorded[];
}

export const STACK_OUTPUTS: Record<string, Record<string, unknown>> = {
  idle: {
    melloAddress: "comfy.example.net",
    melloSshUser: "root",
    melloSshPort: 22,
    melloHostKey: WORKER_HOST_KEY.replace("Worker", "Mello0"),
    bucketNames: {
      models: "comfyume-model-vault-backups",
      cache: "comfyume-cache-backups",
      workerContainer: "comfyume-worker-container-backups",
      userFiles: "comfyume-user-files-backups",
    },
    r2Endpoint: "https://0123456789abcdef0123456789abcdef.eu.r2.cloudflarestorage.com",
    r2AccessKeyId: "idle-r2-access-key-id-secret",
    r2SecretAccessKey: "idle-r2-secret-access-key-secret",
    verdaSshKeyIds: ["key-admin", "key-mello"],
  },
  month: {
    sfsId: "sfs-0001",
    sfsMountTarget: "nfs.fin-01.datacrunch.io:/SFS-comfyume-abc123",
    sfsLocation: "FIN-01",
    scratchVolumeId: "month-scratch-0001",
  },
};
export const STACK_SECRET_OUTPUTS = ["r2AccessKeyId", "r2SecretAccessKey"];

/** Type tokens end with these for the Verda dynamic resources, e.g. `pulumi-nodejs:dynamic/verda:Instance`. */
export const isVerda = (r: Recorded, kind: string) => r.type.endsWith(`verda:${kind}`);

/** The project's SSH resources (infra/remote), dynamic like the Verda ones. */
export const REMOTE_COMMAND = "pulumi-nodejs:dynamic/remote:Command";
export const REMOTE_FILES = "pulumi-nodejs:dynamic/remote:Files";

/** A secret-wrapped input's value (connection and stdin arrive wrapped). */
export function unwrapSecret<T = Record<string, unknown>>(v: unknown): T {
  return (isSecretWrapped(v) ? (v as { value: unknown }).value : v) as T;
}

/** The key a host presents: the pinned one if the connection pins one, else a fresh host's own. */
function presentedHostKey(inputs: Record<string, unknown>): string {
  const hostKey = unwrapSecret(inputs.connection)?.hostKey;
  return typeof hostKey === "string" && hostKey !== "" ? hostKey : FIRST_CONTACT_HOST_KEY;
}

function fakeState(type: string, name: string, inputs: Record<string, unknown>): Record<string, unknown> {
  if (type === "pulumi:pulumi:StackReference") {
    const ref = String(inputs.name);
    const outputs = ref.endsWith("idle") ? STACK_OUTPUTS.idle : STACK_OUTPUTS.month;
    return { ...inputs, outputs, secretOutputNames: STACK_SECRET_OUTPUTS };
  }
  if (type.endsWith("verda:Instance")) {
    return { ...inputs, instanceId: `inst-${name}`, ip: "203.0.113.10", status: "running", osVolumeId: `os-${name}`, pricePerHour: 1.29 };
  }
  if (type.endsWith("verda:Volume")) {
    return {
      ...inputs,
      volumeId: `vol-${name}`,
      status: "detached",
      mountCommand: "mount -t nfs -o nconnect=16 nfs.fin-01.datacrunch.io:volume-88eb67d0 /mnt/volume",
      pseudoPath: "volume-88eb67d0",
      target: inputs.type === "NVMe_Shared" ? "nfs.fin-01.datacrunch.io:/volume-88eb67d0" : "vdb",
      attachedInstanceIds: [],
    };
  }
  if (type.endsWith("verda:SshKey")) return { ...inputs, keyId: `key-${name}` };
  if (type.endsWith("verda:StartupScript")) return { ...inputs, scriptId: `script-${name}` };
  if (type === "hcloud:index/server:Server") return { ...inputs, ipv4Address: "198.51.100.5" };
  if (type === "cloudflare:index/accountToken:AccountToken") return { ...inputs, value: "cf-token-value-secret" };
  if (type === REMOTE_COMMAND) return { ...inputs, stdout: "STEP  SECONDS  RESULT", stderr: "", presentedHostKey: presentedHostKey(inputs) };
  if (type === REMOTE_FILES) return { ...inputs, fileHashes: {}, presentedHostKey: presentedHostKey(inputs) };
  return { ...inputs };
}

/**
 * Sets config and mocks, then builds the program inside a root stack so a stack transformation
 * can record resource options (the mock monitor only sees inputs).
 */
export async function runProgram(stack: string, config: Record<string, unknown>, secretKeys: string[]): Promise<ProgramRun> {
  const values: Record<string, string> = {};
  for (const [k, v] of Object.entries(config)) values[k] = typeof v === "string" ? v : JSON.stringify(v);
  pulumi.runtime.setAllConfig(values, secretKeys);

  const resources: Recorded[] = [];
  const inputsByName = new Map<string, Record<string, unknown>>();
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        inputsByName.set(args.name, args.inputs);
        // hcloud ids are numbers (the program converts them with Number()).
        const id = args.id || (args.type.startsWith("hcloud:") ? String(4000 + inputsByName.size) : `${args.name}-id`);
        return { id, state: fakeState(args.type, args.name, args.inputs) };
      },
      call: (args) => args.inputs,
    },
    "comfyume",
    stack,
    false,
  );

  let outputs: Record<string, pulumi.Output<unknown>> = {};
  await pulumi.runtime.runInPulumiStack(async () => {
    pulumi.runtime.registerStackTransformation((args) => {
      resources.push({
        type: args.type,
        name: args.name,
        inputs: {},
        opts: args.opts as Recorded["opts"],
        parentName: (args.opts.parent as unknown as { __name?: string } | undefined)?.__name,
        resource: args.resource,
      });
      return undefined;
    });
    const { buildProgram } = await import("../../infra/program");
    outputs = await buildProgram();
    return outputs;
  });
  // Let pending registrations reach the mock monitor.
  await settle(() => inputsByName.size);
  for (const r of resources) r.inputs = inputsByName.get(r.name) ?? {};

  const byName = (name: string) => {
    const found = resources.find((r) => r.name === name);
    if (!found) throw new Error(`no resource named ${name}; have: ${resources.map((r) => r.name).join(", ")}`);
    return found;
  };
  return { resources, outputs, byName, named: (prefix) => resources.filter((r) => r.name.startsWith(prefix)) };
}

async function settle(count: () => number): Promise<void> {
  let last = -1;
  for (let i = 0; i < 100; i++) {
    await new Promise((r) => setTimeout(r, 20));
    const now = count();
    if (now === last) return;
    last = now;
  }
}

export function promiseOf<T>(o: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => o.apply((v) => resolve(v)));
}

export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

export function isSecretWrapped(v: unknown): boolean {
  return typeof v === "object" && v !== null && (v as Record<string, unknown>)["4dabf18193072939515e22adb298388d"] === SECRET_SIG;
}

/** Inputs with every secret-wrapped value replaced by a marker: what would be visible in plaintext. */
export function plaintextView(v: unknown): unknown {
  if (isSecretWrapped(v)) return "[secret]";
  if (Array.isArray(v)) return v.map(plaintextView);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plaintextView(x)]));
  return v;
}

export function isSecretOutput(o: pulumi.Output<unknown>): Promise<boolean> {
  return pulumi.isSecret(o);
}

/** Values of the stack outputs that are NOT marked secret (what `pulumi stack output` shows). */
export async function plaintextOutputs(outputs: Record<string, pulumi.Output<unknown>>): Promise<string> {
  const shown: Record<string, unknown> = {};
  for (const [k, o] of Object.entries(outputs)) {
    if (!(await pulumi.isSecret(o))) shown[k] = await promiseOf(o);
  }
  return JSON.stringify(shown);
}
