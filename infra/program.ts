// The program: validate all configuration first (nothing is declared before that), then build the
// layer of this stack's phase and return its outputs. Under `pulumi destroy --run-program` it declares nothing.
import * as pulumi from "@pulumi/pulumi";
import { ConfigError, loadConfig, type RawConfig } from "./config";
import { isDestroyCommand, pulumiCommand } from "./config/operation";
// The layers are loaded when their phase runs (below): idle's components pull in the Cloudflare and Hetzner SDKs,
// about a second of module loading that a day or month program (run twice per `up`: preview, update) never needs.
import { programVerdaCredentials } from "./phases/live-sfs";
import { moneyGate } from "./money/phase-gate";
import { redactSdkDebugLog } from "./config/debug-redaction";
import { checkEnvironment, idleReference } from "./phases/environment";
import { installProviderCodeCache } from "./provider-code-cache";
import { requireLayerOutputs, requiredDayOutputs, requiredServerlessDayOutputs } from "./phases/layer-outputs";
import { DayPreflight } from "./phases/preflight";

export const DESTROY_NOTE =
  "destroy: the program declares nothing (no config validation, money gate, StackReference or Verda read can block the teardown); " +
  "every delete runs from state, with the inputs and provider code recorded by the last `pulumi up` (docs/nightly.md)";

/**
 * Month and day stacks pass the money gate (balance, capacity with fallbacks, budget) before any
 * resource is declared; a day stack then uses the placement the preflight chose.
 * `command` is the running Pulumi subcommand (detected; see config/operation.ts).
 */
export async function buildProgram(raw?: RawConfig, command: string | undefined = pulumiCommand()): Promise<Record<string, pulumi.Output<unknown>>> {
  redactSdkDebugLog();
  if (isDestroyCommand(command)) {
    // Registering nothing makes `destroy --run-program` delete exactly what a plain `destroy` deletes, in the
    // same order (the state's dependencies), with the same code (the state's): nothing here can fail it.
    pulumi.log.info(DESTROY_NOTE);
    return {};
  }
  // The dynamic providers' code is serialized once per code version, not in every run (before the first create).
  installProviderCodeCache();
  let cfg;
  try {
    cfg = loadConfig(raw);
  } catch (e) {
    // RunError: the engine prints the message without a stack trace.
    if (e instanceof ConfigError) throw new pulumi.RunError(e.message);
    throw e;
  }
  if (cfg.layer === "idle") return (await import("./phases/idle")).idleLayer(cfg);
  const day = cfg.layer === "day" ? await import("./phases/day") : undefined;
  const month = cfg.layer === "day" ? day!.monthReference(cfg) : undefined;
  // A stack that would take another environment's identity (or hold the wrong login key) stops before the money gate.
  const idle = idleReference(cfg.stackRefs.idle);
  // One read of each layer below (the engine reads each StackReference once), checked together: the environment,
  // and every output the day requires, so a layer that is not up fails here, not after the instance exists.
  const required = cfg.layer !== "day" ? undefined : cfg.inference === "serverless" ? requiredServerlessDayOutputs(cfg) : requiredDayOutputs(cfg);
  const layersUp =
    cfg.layer === "day" && required
      ? requireLayerOutputs([
          { ref: idle, stack: cfg.stackRefs.idle, keys: required.idle },
          { ref: month!, stack: cfg.stackRefs.month, keys: required.month },
        ])
      : undefined;
  await Promise.all([
    checkEnvironment(idle, {
      stack: cfg.stack,
      environment: cfg.environment,
      idleStack: cfg.stackRefs.idle.split("/").pop()!,
      privateKey: cfg.sshPrivateKey?.reveal(),
      ...(cfg.layer === "day" ? { hostname: cfg.gpu.hostname, tailscaleIp: cfg.restore.expectedTailscaleIp } : {}),
    }),
    layersUp,
  ]);
  const gate = cfg.verda.moneyGate ? await moneyGate(cfg, programVerdaCredentials(), { monthRef: month }) : undefined;
  const costEstimate: Record<string, pulumi.Output<unknown>> = gate ? { costEstimate: pulumi.output(gate.report) } : {};
  if (cfg.layer === "month") return { ...(await import("./phases/month")).monthLayer(cfg, idle), ...costEstimate };
  if (cfg.inference === "serverless") {
    const { serverlessDay } = await import("./phases/serverless");
    return { ...serverlessDay(cfg, month!, idle, cfg.verda.liveSfsRead ? programVerdaCredentials() : undefined), ...costEstimate };
  }
  const gpu = gate?.placement ? { ...cfg.gpu, ...gate.placement } : cfg.gpu;
  const dayCfg = await day!.withAppRedis({ ...cfg, gpu }, month!);
  // Nothing the day declares reaches the engine before the backup-hook rule passed over all of it: an `up`
  // without a preview (scripts/pulumi, a day that is down) still fails before the first create.
  // (A preview registers everything: the policy pack then reports every violation at once.)
  const preflight = pulumi.runtime.isDryRun() ? undefined : new DayPreflight();
  preflight?.install();
  const outputs = day!.dayLayer(dayCfg, month, idle);
  await preflight?.check(cfg.stack);
  return { ...outputs, ...costEstimate };
}
