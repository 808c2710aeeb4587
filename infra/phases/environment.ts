// What a month/day stack takes from the idle stack's environment registry: its environment's own
// login key, and a check that its Tailscale identity is its own (docs/configuration.md, Environments).
import * as pulumi from "@pulumi/pulumi";
import { identityConflicts, loginKeyConflict, privateKeyFingerprint, type PublishedEnvironment } from "../config/environments";
import type { Environment } from "../config/phase";

/**
 * The Verda key ids for this environment's instances: its own login key and mello's when the idle
 * stack registers one (`comfyume:environments.<env>.loginKey`), else the shared admin and mello keys.
 */
export function environmentSshKeyIds(idle: pulumi.StackReference, environment: Environment): pulumi.Output<string[]> {
  const byEnvironment = idle.getOutput("verdaSshKeyIdsByEnvironment") as pulumi.Output<Record<string, string[]> | undefined>;
  const shared = idle.requireOutput("verdaSshKeyIds") as pulumi.Output<string[]>;
  return pulumi.all([byEnvironment, shared]).apply(([byEnv, sharedIds]) => byEnv?.[environment] ?? sharedIds);
}

/** The idle layer, read by month and day stacks (one reference per program: the name is its URN). */
export function idleReference(name: string): pulumi.StackReference {
  return new pulumi.StackReference("idle", { name });
}

/**
 * Before a month/day stack declares anything: its Tailscale identity must not be another environment's,
 * nor differ from its own environment's registry entry, and its SSH private key must be the private half
 * of its environment's login key. Every message names both stacks' settings.
 */
export async function checkEnvironment(
  idle: pulumi.StackReference,
  own: { stack: string; environment: Environment; hostname?: string; tailscaleIp?: string; idleStack: string; privateKey?: string },
): Promise<void> {
  // `secretValue` when the idle stack's outputs are all secret (an older CLI without per-output secrecy).
  const details = await idle.getOutputDetails("environments");
  const registry = (details.value ?? details.secretValue) as Record<string, PublishedEnvironment> | undefined;
  const problems = identityConflicts(own, registry);
  const key = own.privateKey === undefined ? undefined : loginKeyConflict({ ...own, privateKeyFingerprint: privateKeyFingerprint(own.privateKey) }, registry);
  if (key) problems.push(key);
  if (problems.length > 0) throw new pulumi.RunError(`Environment '${own.environment}' of stack '${own.stack}' is not its own; nothing was created:\n  - ${problems.join("\n  - ")}`);
}
