// Reading what a rescue needs from a day stack's exported state (`pulumi stack export
// --show-secrets`, held in memory only): the gone instance, its scratch, the SSH settings the
// worker's commands used, and R2 (endpoint, user-files bucket, credentials) from the idle layer's
// StackReference. Pure functions over JSON, so they are tested without a cloud.

export const INSTANCE_TYPE = "pulumi-nodejs:dynamic/verda:Instance";
export const INSTANCE_GUARD_TYPE = "pulumi-nodejs:dynamic/verda:InstanceGuard";
export const VOLUME_TYPE = "pulumi-nodejs:dynamic/verda:Volume";
export const REMOTE_COMMAND_TYPE = "pulumi-nodejs:dynamic/remote:Command";
export const REMOTE_FILES_TYPE = "pulumi-nodejs:dynamic/remote:Files";
export const STACK_REFERENCE_TYPE = "pulumi:pulumi:StackReference";
export const STACK_TYPE = "pulumi:pulumi:Stack";
/** The instance-side backup hook (mello's ends in `-backup-mello-before-delete` and stays). */
export const INSTANCE_HOOK_SUFFIX = "-backup-before-delete";

/** Pulumi's marker for a secret value in state and exports. */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";

export interface StateResource {
  urn: string;
  type: string;
  id?: string;
  custom?: boolean;
  parent?: string;
  inputs?: Record<string, unknown>;
  outputs?: Record<string, unknown>;
  dependencies?: string[];
  propertyDependencies?: Record<string, string[]>;
  deletedWith?: string;
  [key: string]: unknown;
}

export interface StackExport {
  version: number;
  deployment: { resources?: StateResource[]; pending_operations?: unknown[]; [key: string]: unknown };
  [key: string]: unknown;
}

/** SSH settings of the worker's commands; the host is the rescue instance's address. */
export interface SshSettings {
  user: string;
  port: number;
  privateKey: string;
  dialErrorLimit: number;
  perDialTimeout: number;
}

export interface RescueTarget {
  stack: string;
  instance: { urn: string; instanceId: string; hostname: string; locationCode: string; sshKeyIds: string[]; ip?: string };
  scratchVolumeId: string;
  /** The scratch is the day stack's own (`*-scratch` volume, created blank that morning), not the month's. */
  scratchIsDayScoped: boolean;
  ssh: SshSettings;
  r2: { endpoint: string; userFilesBucket: string; accessKeyId: string; secretAccessKey: string };
}

export function nameOf(urn: string): string {
  return urn.slice(urn.lastIndexOf("::") + 2);
}

/** Replaces every `{sig, plaintext}` secret by its value; a still-encrypted one is an error. */
export function revealSecrets(value: unknown, where = "state"): unknown {
  if (Array.isArray(value)) return value.map((v) => revealSecrets(v, where));
  if (value === null || typeof value !== "object") return value;
  const obj = value as Record<string, unknown>;
  if (obj[SECRET_SIG] !== undefined) {
    if (typeof obj.plaintext !== "string") {
      throw new Error(`${where} holds an encrypted secret: export it with --show-secrets (the rescue keeps it in memory only)`);
    }
    return revealSecrets(JSON.parse(obj.plaintext), where);
  }
  return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, revealSecrets(v, where)]));
}

export function parseExport(text: string, stack: string): StackExport {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new Error(`the export of stack ${stack} is not JSON (${(e as Error).message})`);
  }
  const exp = parsed as StackExport;
  if (!exp || typeof exp !== "object" || !exp.deployment || typeof exp.deployment !== "object") {
    throw new Error(`the export of stack ${stack} has no deployment: has it ever been up?`);
  }
  return exp;
}

export function resourcesOf(exp: StackExport): StateResource[] {
  return exp.deployment.resources ?? [];
}

const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);

function valuesOf(r: StateResource): Record<string, unknown> {
  return { ...(r.inputs ?? {}), ...(r.outputs ?? {}) };
}

/** The one worker instance of a day stack (a stack with none or several is not a rescue case). */
export function findInstance(resources: StateResource[], stack: string): StateResource {
  const found = resources.filter((r) => r.type === INSTANCE_TYPE);
  if (found.length === 0) {
    throw new Error(`stack ${stack} holds no Verda instance (${INSTANCE_TYPE}): nothing to rescue; run \`scripts/pulumi destroy --stack ${stack}\``);
  }
  if (found.length > 1) {
    throw new Error(`stack ${stack} holds ${found.length} instances (${found.map((r) => nameOf(r.urn)).join(", ")}); the rescue handles a day stack with one worker`);
  }
  return found[0]!;
}

/** URNs that depend on `urn`, directly or through others (dependencies, propertyDependencies, deletedWith). */
export function dependentsOf(resources: StateResource[], urn: string): Set<string> {
  const out = new Set<string>();
  let grew = true;
  while (grew) {
    grew = false;
    for (const r of resources) {
      if (out.has(r.urn) || r.urn === urn) continue;
      const refs = referencesOf(r);
      if (refs.has(urn) || [...refs].some((u) => out.has(u))) {
        out.add(r.urn);
        grew = true;
      }
    }
  }
  return out;
}

export function referencesOf(r: StateResource): Set<string> {
  const refs = new Set<string>(r.dependencies ?? []);
  for (const list of Object.values(r.propertyDependencies ?? {})) for (const u of list ?? []) refs.add(u);
  if (r.deletedWith) refs.add(r.deletedWith);
  for (const u of (r.replaceWith as string[] | undefined) ?? []) refs.add(u);
  return refs;
}

function connectionOf(r: StateResource): Record<string, unknown> | undefined {
  const c = valuesOf(r).connection;
  return c && typeof c === "object" ? (c as Record<string, unknown>) : undefined;
}

/** Every StackReference output map, merged; secrets revealed. */
function referencedOutputs(resources: StateResource[]): Record<string, unknown> {
  const merged: Record<string, unknown> = {};
  for (const r of resources.filter((x) => x.type === STACK_REFERENCE_TYPE)) {
    const outs = (r.outputs?.outputs ?? {}) as Record<string, unknown>;
    for (const [k, v] of Object.entries(outs)) if (!(k in merged)) merged[k] = v;
  }
  return merged;
}

function scratchIdOf(resources: StateResource[], instance: StateResource, stack: string): string {
  const stackOutputs = resources.find((r) => r.type === STACK_TYPE)?.outputs ?? {};
  const fromOutput = str(stackOutputs.scratchVolumeId);
  const dayVolume = resources.find((r) => r.type === VOLUME_TYPE && nameOf(r.urn).endsWith("-scratch"));
  const fromVolume = dayVolume ? str(valuesOf(dayVolume).volumeId) ?? str(dayVolume.id) : undefined;
  const attached = (valuesOf(instance).existingVolumes as string[] | undefined) ?? [];
  const id = fromVolume ?? fromOutput;
  if (!id) throw new Error(`stack ${stack} records no scratch volume (no *-scratch Volume, no scratchVolumeId output): nothing to rescue`);
  if (attached.length > 0 && !attached.includes(id)) {
    throw new Error(`stack ${stack}: scratch ${id} is not among the instance's volumes (${attached.join(", ")}); the state is inconsistent, rescue by hand`);
  }
  return id;
}

/** The SSH settings of the commands that ran on the worker (its backup hook first). */
function sshOf(resources: StateResource[], instance: StateResource, melloHost: string | undefined, stack: string): SshSettings {
  const onWorker = [...dependentsOf(resources, instance.urn)]
    .map((u) => resources.find((r) => r.urn === u)!)
    .filter((r) => (r.type === REMOTE_COMMAND_TYPE || r.type === REMOTE_FILES_TYPE) && connectionOf(r) && connectionOf(r)!.host !== melloHost)
    .sort((a, b) => Number(nameOf(b.urn).endsWith(INSTANCE_HOOK_SUFFIX)) - Number(nameOf(a.urn).endsWith(INSTANCE_HOOK_SUFFIX)));
  const c = onWorker.map(connectionOf).find((x) => x && str(x.privateKey));
  if (!c) throw new Error(`stack ${stack} records no SSH connection to the worker (with a private key): cannot log in to a rescue instance`);
  return {
    user: str(c.user) ?? "root",
    port: typeof c.port === "number" ? c.port : 22,
    privateKey: c.privateKey as string,
    dialErrorLimit: typeof c.dialErrorLimit === "number" ? c.dialErrorLimit : 10,
    perDialTimeout: typeof c.perDialTimeout === "number" ? c.perDialTimeout : 15,
  };
}

/** Everything the rescue needs, or an error naming what is missing. `exp` must have secrets revealed. */
export function rescueTarget(exp: StackExport, stack: string): RescueTarget {
  const resources = resourcesOf(exp);
  const instance = findInstance(resources, stack);
  const v = valuesOf(instance);
  const instanceId = str(v.instanceId) ?? str(instance.id);
  const locationCode = str(v.locationCode);
  if (!instanceId || !locationCode) throw new Error(`stack ${stack}: the instance ${nameOf(instance.urn)} has no instanceId/locationCode in state`);
  const refs = referencedOutputs(resources);
  const buckets = (refs.bucketNames ?? {}) as Record<string, unknown>;
  const r2 = {
    endpoint: str(refs.r2Endpoint),
    userFilesBucket: str(buckets.userFiles),
    accessKeyId: str(refs.r2AccessKeyId),
    secretAccessKey: str(refs.r2SecretAccessKey),
  };
  const outputName: Record<string, string> = { endpoint: "r2Endpoint", userFilesBucket: "bucketNames.userFiles", accessKeyId: "r2AccessKeyId", secretAccessKey: "r2SecretAccessKey" };
  const missing = Object.entries(r2).filter(([, x]) => !x).map(([k]) => outputName[k]);
  if (missing.length) {
    throw new Error(`stack ${stack}: the idle layer's outputs (StackReference in state) lack ${missing.join(", ")}; run \`scripts/pulumi refresh --stack ${stack}\` or check the idle stack`);
  }
  return {
    stack,
    instance: {
      urn: instance.urn,
      instanceId,
      hostname: str(v.hostname) ?? "worker",
      locationCode,
      sshKeyIds: ((v.sshKeyIds as string[] | undefined) ?? []).filter((k) => typeof k === "string"),
      ip: str(v.ip),
    },
    scratchVolumeId: scratchIdOf(resources, instance, stack),
    scratchIsDayScoped: resources.some((r) => r.type === VOLUME_TYPE && nameOf(r.urn).endsWith("-scratch")),
    ssh: sshOf(resources, instance, str(refs.melloAddress), stack),
    r2: r2 as RescueTarget["r2"],
  };
}
