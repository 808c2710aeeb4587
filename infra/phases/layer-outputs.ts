// The outputs a day stack requires from the layers below, checked once, together, before anything is declared.
// A missing one used to surface only when the resource that needs it registered: in an update, after the
// instance had been created (a backup hook needs the idle's R2 endpoint; the instance does not).
import * as pulumi from "@pulumi/pulumi";
import type { DayConfig } from "../config";

/** The month outputs of its app host (app.host = verda): absent when the month's own stack file has no app host. */
const APP_HOST_OUTPUTS = ["appIp", "appHostKey", "appDataDir", "appDataDirs"];

/** The idle and month outputs the instance day's resources take with requireOutput (infra/phases/day.ts). */
export function requiredDayOutputs(cfg: Pick<DayConfig, "app" | "scratch">): { idle: string[]; month: string[] } {
  const appOnVerda = cfg.app.host === "verda";
  return {
    idle: ["verdaSshKeyIds", "r2Endpoint", "r2AccessKeyId", "r2SecretAccessKey", "bucketNames", ...(appOnVerda ? [] : ["melloAddress", "melloSshPort", "melloSshUser", "melloHostKey"])],
    month: ["sfsId", "sfsMountTarget", "sfsLocation", ...(cfg.scratch.lifetime === "month" ? ["scratchVolumeId"] : []), ...(appOnVerda ? APP_HOST_OUTPUTS : [])],
  };
}

/** The idle and month outputs a serverless day takes (infra/phases/serverless.ts): its nightly backups need the app host's. */
export function requiredServerlessDayOutputs(cfg: Pick<DayConfig, "app" | "serverless">): { idle: string[]; month: string[] } {
  const nightly = cfg.app.host === "verda" && cfg.serverless.outputsBackup === "app-host";
  return {
    idle: nightly ? ["r2Endpoint", "r2AccessKeyId", "r2SecretAccessKey", "bucketNames"] : [],
    month: ["serverlessDeployments", "sfsId", ...(nightly ? APP_HOST_OUTPUTS : [])],
  };
}

/** Why `stack` lacks `absent`, and the fix: a month without its app host is a stack file that disagrees, not a layer that is down. */
function missingOutputsFix(stack: string, absent: string[]): string {
  const name = stack.split("/").pop();
  if (absent.every((key) => APP_HOST_OUTPUTS.includes(key))) {
    return `it declares no app host. Set comfyume:app.host: verda in its stack file too (as in this one), then run 'scripts/pulumi up --stack ${name}'`;
  }
  return `run 'scripts/pulumi up --stack ${name}' first (or fix comfyume:stackRefs)`;
}

/** Fails, naming every missing output of both stacks and the command that creates them, before any resource. */
export async function requireLayerOutputs(layers: { ref: pulumi.StackReference; stack: string; keys: string[] }[]): Promise<void> {
  const missing = await Promise.all(
    layers.map(async ({ ref, stack, keys }) => {
      const details = await Promise.all(keys.map((key) => ref.getOutputDetails(key)));
      const absent = keys.filter((_, i) => details[i].value === undefined && details[i].secretValue === undefined);
      return absent.length ? `stack '${stack}' exports no ${absent.join(", ")}: ${missingOutputsFix(stack, absent)}` : undefined;
    }),
  );
  const problems = missing.filter((m): m is string => m !== undefined);
  if (problems.length) throw new pulumi.RunError(`The layers below this stack are not up; nothing was created:\n  - ${problems.join("\n  - ")}`);
}
