// Environments (`prod`, `testing`, `staging`, ...) as the idle stack registers them: each has its own
// Verda login key and its own Tailscale identity. Two environments sharing one identity let "whichever
// instance connects first" take the other's tailnet address, so sharing is refused by name.
import { z } from "zod";
import { environmentNameProblem, type Environment } from "./phase";
import { fingerprintSha256 } from "../remote/hostkey";

export interface ConfigIssueLike {
  key: string;
  problem: string;
  fix: string;
}

/**
 * `comfyume:environments` (idle stack): one entry per environment, all optional fields.
 * - loginKey: the environment's own SSH public key, registered at Verda as loginKeyName.
 * - tailscale.hostname: the worker's hostname, whose backup set carries its Tailscale state.
 * - tailscale.ip: the address the environment's worker must come up with.
 */
export function environmentsSchema(sshPublicKey: z.ZodType<string>, hostname: z.ZodType<string>, ipv4: z.ZodType<string>) {
  const name = z.string().superRefine((value, ctx) => {
    const problem = environmentNameProblem(value);
    if (problem) ctx.addIssue({ code: "custom", message: `environment ${problem}` });
  });
  const entry = z.strictObject({
    loginKey: sshPublicKey.optional(),
    loginKeyName: z.string("must be the key's name at Verda").trim().min(1, "must not be empty").optional(),
    tailscale: z.strictObject({ hostname: hostname.optional(), ip: ipv4.optional() }).default({}),
  });
  return z.record(name, entry).default({});
}

export type EnvironmentEntry = z.output<ReturnType<typeof environmentsSchema>>[string];
export type Environments = Record<Environment, EnvironmentEntry>;

/** The Verda name of an environment's login key: shown in the console, so it names the environment. */
export function loginKeyName(env: Environment, entry: EnvironmentEntry): string {
  return entry.loginKeyName ?? `comfyume-${env}-login`;
}

/** What other stacks may read of the registry (idle output `environments`): no secrets, no keys. */
export interface PublishedEnvironment {
  loginKeyName?: string;
  /** SHA256 fingerprint of the login key (public): month/day stacks check their private key against it. */
  loginKeyFingerprint?: string;
  tailscaleHostname?: string;
  tailscaleIp?: string;
}

export function publishedEnvironments(envs: Environments): Record<Environment, PublishedEnvironment> {
  return Object.fromEntries(
    Object.entries(envs).map(([env, e]) => [
      env,
      {
        ...(e.loginKey ? { loginKeyName: loginKeyName(env, e), loginKeyFingerprint: fingerprintSha256(Buffer.from(e.loginKey.split(/\s+/)[1], "base64")) } : {}),
        tailscaleHostname: e.tailscale.hostname,
        tailscaleIp: e.tailscale.ip,
      },
    ]),
  );
}

/** Settings two environments must never share, each reported once, naming both settings. */
export function registryConflicts(envs: Environments, stack: string): ConfigIssueLike[] {
  const key = (env: string, path: string) => `comfyume:environments.${env}.${path}`;
  const fields: Array<{ path: string; what: string; value: (env: string, e: EnvironmentEntry) => string | undefined }> = [
    { path: "loginKey", what: "SSH login key", value: (_env, e) => e.loginKey?.split(/\s+/).slice(0, 2).join(" ") },
    { path: "loginKeyName", what: "Verda login key name", value: (env, e) => (e.loginKey ? loginKeyName(env, e) : undefined) },
    { path: "tailscale.hostname", what: "Tailscale hostname (its backup set carries the Tailscale state)", value: (_env, e) => e.tailscale.hostname },
    { path: "tailscale.ip", what: "Tailscale address", value: (_env, e) => e.tailscale.ip },
  ];
  const issues: ConfigIssueLike[] = [];
  for (const field of fields) {
    const seen = new Map<string, string>();
    for (const [env, e] of Object.entries(envs)) {
      const value = field.value(env, e);
      if (value === undefined) continue;
      const first = seen.get(value);
      if (first === undefined) {
        seen.set(value, env);
        continue;
      }
      issues.push({
        key: key(env, field.path),
        problem: `is the same ${field.what} as ${key(first, field.path)}: environments ${first} and ${env} would share one identity (whichever instance connects first takes it)`,
        fix: `give ${env} its own: scripts/pulumi config set --path '${key(env, field.path)}' <${field.path === "loginKey" ? "public key of its own key pair" : "its own value"}> --stack ${stack}`,
      });
    }
  }
  return issues;
}

/**
 * A month/day stack's identity against the idle stack's registry: the hostname and address must be its
 * own environment's, never another's. Returns one message per conflict, naming both stacks' settings.
 */
export function identityConflicts(
  own: { stack: string; environment: Environment; hostname?: string; tailscaleIp?: string; idleStack: string },
  registry: Record<Environment, PublishedEnvironment> | undefined,
): string[] {
  const problems: string[] = [];
  const registered = (env: string, path: string) => `comfyume:environments.${env}.${path} of stack ${own.idleStack}`;
  const mine = {
    hostname: `comfyume:gpu.hostname of stack ${own.stack}`,
    ip: `comfyume:restore.expectedTailscaleIp of stack ${own.stack}`,
  };
  for (const [env, e] of Object.entries(registry ?? {})) {
    const same = env === own.environment;
    for (const [field, value, theirs] of [
      ["hostname", own.hostname, e.tailscaleHostname],
      ["ip", own.tailscaleIp, e.tailscaleIp],
    ] as const) {
      if (value === undefined || theirs === undefined) continue;
      const path = field === "hostname" ? "tailscale.hostname" : "tailscale.ip";
      if (!same && value === theirs) {
        problems.push(
          `${mine[field]} is '${value}', which ${registered(env, path)} gives to environment ${env}: ${own.environment} would take ${env}'s Tailscale identity. ` +
            `Fix: use ${own.environment}'s own (${registered(own.environment, path)}).`,
        );
      }
      if (same && value !== theirs) {
        problems.push(`${mine[field]} is '${value}' but ${registered(env, path)} is '${theirs}'. Fix: make them the same (the registry is the environment's identity).`);
      }
    }
  }
  return problems;
}

/** The SHA256 fingerprint of a private key's public half; undefined when ssh2 cannot parse it. */
export function privateKeyFingerprint(privateKey: string): string | undefined {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { utils } = require("ssh2") as typeof import("ssh2");
  const parsed = utils.parseKey(privateKey);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  return !key || key instanceof Error ? undefined : fingerprintSha256(key.getPublicSSH());
}

/**
 * A month/day stack's SSH private key must be the private half of its environment's registered login key:
 * the instance accepts only that key, and a mismatch would only show after every SSH dial was refused.
 */
export function loginKeyConflict(
  own: { stack: string; environment: Environment; privateKeyFingerprint?: string; idleStack: string },
  registry: Record<Environment, PublishedEnvironment> | undefined,
): string | undefined {
  const registered = registry?.[own.environment]?.loginKeyFingerprint;
  if (!registered || !own.privateKeyFingerprint || registered === own.privateKeyFingerprint) return undefined;
  return (
    `comfyume:sshPrivateKey of stack ${own.stack} (${own.privateKeyFingerprint}) is not the private half of ` +
    `comfyume:environments.${own.environment}.loginKey of stack ${own.idleStack} (${registered}), the only key on ${own.environment}'s instances. ` +
    `Fix: scripts/pulumi config set --secret 'comfyume:sshPrivateKey' --stack ${own.stack} < <${own.environment}'s private key file>`
  );
}
