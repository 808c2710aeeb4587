// comfyume:inference and the rules of comfyume:serverless the schema cannot express (docs/configuration.md
// "Serverless"). Pure: every message names the key and the command that fixes it.
import type { Settings } from "./schema";
import type { Layer } from "./phase";
import { removeCommand, setCommand } from "./hints";
import { NAMESPACE } from "./issues";

export type Inference = "instance" | "serverless";
export const INFERENCE_MODES: readonly Inference[] = ["instance", "serverless"];

type Add = (key: string, problem: string, fix: string) => void;

export function parseInference(value: string | undefined, stack: string, add: Add): Inference {
  if (value === undefined) return "instance";
  const mode = value.trim();
  if ((INFERENCE_MODES as readonly string[]).includes(mode)) return mode as Inference;
  add(`${NAMESPACE}:inference`, `'${value}' is not an inference mode; use instance or serverless`, `scripts/pulumi config set '${NAMESPACE}:inference' serverless --stack ${stack}   (or instance, the default)`);
  return "instance";
}

/** Serverless rules the schema cannot express (inference = serverless, month and day layers). */
export function serverlessChecks(layer: Layer, stack: string, s: Partial<Settings>, add: Add): void {
  const sl = s.serverless;
  if (!sl) return;
  if (layer === "month" && !sl.image) {
    add(`${NAMESPACE}:serverless.image`, "is missing: the worker image the month's deployments run (inference = serverless)", `${setCommand("serverless.image", stack)}   (e.g. ghcr.io/ahelme/comfyume-worker:v1)`);
  }
  outputsBackupCheck(stack, s, add);
  const seen = new Set<string>();
  sl.deployments.forEach((d, i) => {
    const key = `${NAMESPACE}:serverless.deployments[${i}]`;
    const id = `${d.gpu.toLowerCase()}-${d.spot ? "spot" : "on-demand"}`;
    if (seen.has(id)) add(key, `repeats ${d.gpu} ${d.spot ? "spot" : "on-demand"}: one deployment per GPU × pricing`, removeCommand(key, stack));
    seen.add(id);
    const min = d.minReplicas ?? sl.scaling.minReplicas;
    const max = d.maxReplicas ?? sl.scaling.maxReplicas;
    if (min > max) add(`${key}.minReplicas`, `(${min}) exceeds its maxReplicas (${max})`, setCommand(`serverless.deployments[${i}].maxReplicas`, stack));
  });
}

/**
 * The containers write their outputs to <sfs>/outputs and no GPU instance backs them up: the month's app
 * host (app.host = verda) mounts the SFS and does, with the day's destroy. With the app on mello no host
 * mounts the SFS (it is reachable only inside Verda), so the setting is refused unless said outright.
 */
function outputsBackupCheck(stack: string, s: Partial<Settings>, add: Add): void {
  if (s.serverless?.outputsBackup !== "app-host" || s.app?.host === "verda") return;
  add(
    `${NAMESPACE}:app.host`,
    `is '${s.app?.host ?? "mello"}' with inference = serverless: no host mounts the SFS at night, so the outputs the containers write to <sfs>/outputs would never reach R2`,
    `scripts/pulumi config set --path '${NAMESPACE}:app.host' verda --stack ${stack}   (in the month and the day stack: the app host mounts the SFS and backs <sfs>/outputs up with the nightly destroy; docs/backups.md), ` +
      `or accept outputs that are not backed up: scripts/pulumi config set --path '${NAMESPACE}:serverless.outputsBackup' none --stack ${stack}`,
  );
}
