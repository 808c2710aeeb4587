// The outputs a day stack requires from the layers below, checked once, together, before anything is declared.
// A missing one used to surface only when the resource that needs it registered: in an update, after the
// instance had been created (a backup hook needs the idle's R2 endpoint; the instance does not).
import * as pulumi from "@pulumi/pulumi";
import type { DayConfig } from "../config";

/** The idle and month outputs the instance day's resources take with requireOutput (infra/phases/day.ts). */
export function requiredDayOutputs(cfg: Pick<DayConfig, "app" | "scratch">): { idle: string[]; month: string[] } {
  const appOnVerda = cfg.app.host === "verda";
  return {
    idle: ["verdaSshKeyIds", "r2Endpoint", "r2AccessKeyId", "r2SecretAccessKey", "bucketNames", ...(appOnVerda ? [] : ["melloAddress", "melloSshPort", "melloSshUser", "melloHostKey"])],
    month: ["sfsId", "sfsMountTarget", "sfsLocation", ...(cfg.scratch.lifetime === "month" ? ["scratchVolumeId"] : []), ...(appOnVerda ? ["appIp", "appHostKey", "appDataDir", "appDataDirs"] : [])],
  };
}

/** Fails, naming every missing output of both stacks and the command that creates them, before any resource. */
export async function requireLayerOutputs(layers: { ref: pulumi.StackReference; stack: string; keys: string[] }[]): Promise<void> {
  const missing = await Promise.all(
    layers.map(async ({ ref, stack, keys }) => {
      const details = await Promise.all(keys.map((key) => ref.getOutputDetails(key)));
      const absent = keys.filter((_, i) => details[i].value === undefined && details[i].secretValue === undefined);
      return absent.length ? `stack '${stack}' exports no ${absent.join(", ")}: run 'scripts/pulumi up --stack ${stack.split("/").pop()}' first (or fix comfyume:stackRefs)` : undefined;
    }),
  );
  const problems = missing.filter((m): m is string => m !== undefined);
  if (problems.length) throw new pulumi.RunError(`The layers below this stack are not up; nothing was created:\n  - ${problems.join("\n  - ")}`);
}
