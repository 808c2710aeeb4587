// The rescue of an orphaned scratch, start to end on the cloud side: the worker is proven gone,
// a CPU instance is started with the scratch attached, the users' inputs and outputs are backed up
// to R2 and verified there, and the rescue instance is deleted again (its OS volume with it, the
// scratch never). Any failure still deletes the rescue instance and leaves the scratch detached.
import { checkScratchFree, chooseImage, chooseInstanceType, confirmGone, deleteRescueInstance, deployRescueInstance, type RescueVerda, type Waits } from "./cloud";
import { backupCommand, ensureTools, pinHostKey, prepareScratchCommand, runRemote, unmountCommand, uploadScripts, type RescuePaths } from "./remote";
import type { RescueTarget } from "./state";

export interface RescueOptions {
  paths: RescuePaths;
  instanceType?: string;
  waits: Waits;
  timeouts: { prepareSeconds: number; backupSeconds: number };
  /** backup-mello's shrink check settings; unset = the script's defaults. */
  shrink?: { tolerance?: number; accept: string[] };
  log: (line: string) => void;
  /** Asked once the plan is known, before anything is created; false stops with nothing done. */
  confirm: (summary: string) => Promise<boolean>;
}

export interface RescueResult {
  rescueInstanceId: string;
  instanceType: string;
  pricePerHour: number;
  location: string;
  scratchVolumeId: string;
  hostKey: string;
  /** backup-mello's last lines (set names, counts, "verified"); no secrets. */
  backupSummary: string;
  osVolumeDeleted: boolean;
  seconds: number;
}

export class RescueError extends Error {
  constructor(message: string, readonly cleanup: string) {
    super(`${message}\n${cleanup}`);
    this.name = "RescueError";
  }
}

function secretsStdin(t: RescueTarget): string {
  const lines = { R2_ACCESS_KEY_ID: t.r2.accessKeyId, R2_SECRET_ACCESS_KEY: t.r2.secretAccessKey };
  for (const [k, v] of Object.entries(lines)) if (/[\r\n]/.test(v)) throw new Error(`${k} from the idle layer spans several lines; it cannot go on stdin as KEY=value`);
  return Object.entries(lines).map(([k, v]) => `${k}=${v}\n`).join("");
}

function rescueHostname(hostname: string): string {
  return `${hostname.slice(0, 63 - "-rescue".length).replace(/-+$/, "")}-rescue`;
}

export async function rescueScratch(target: RescueTarget, api: RescueVerda, o: RescueOptions): Promise<RescueResult> {
  const started = Date.now();
  const { log } = o;
  const r2Secrets = secretsStdin(target);
  if (target.instance.sshKeyIds.length === 0) throw new Error(`stack ${target.stack}: the instance recorded no SSH key ids; a rescue instance could not be logged into`);
  log(`1/6 checking at Verda that instance ${target.instance.instanceId} is gone`);
  const seen = await confirmGone(api, target.instance.instanceId, target.stack, o.waits);
  log(`    instance ${target.instance.instanceId}: ${seen}`);
  await removeLeftoverRescue(api, target, o);
  const scratch = await checkScratchFree(api, target.scratchVolumeId, o.waits);
  const location = scratch.location || target.instance.locationCode;
  log(`    scratch ${scratch.id} (${scratch.size} GB, ${location}) is ${scratch.status}`);
  const { instanceType, pricePerHour } = await chooseInstanceType(api, location, o.instanceType);
  const image = await chooseImage(api, instanceType);
  const summary =
    `Rescue of scratch ${scratch.id} for stack ${target.stack}: start ${instanceType} (${image}, ${pricePerHour}/h) in ${location} ` +
    `with the scratch attached, back up inputs,outputs to r2:${target.r2.userFilesBucket}/scratch, verify, delete the rescue instance.`;
  if (!(await o.confirm(summary))) throw new Error("stopped before creating anything (not confirmed; pass --yes to skip the question)");

  let rescueId: string | undefined;
  let failure: Error | undefined;
  let hostKey = "";
  let backupSummary = "";
  try {
    log(`2/6 starting rescue instance ${instanceType} in ${location} with the scratch attached`);
    const spec = {
      instanceType, image, location, hostname: rescueHostname(target.instance.hostname), sshKeyIds: target.instance.sshKeyIds,
      scratchVolumeId: scratch.id, description: `comfyume rescue of scratch ${scratch.id} (stack ${target.stack})`,
    };
    const up = await deployRescueInstance(api, spec, o.waits, (id) => (rescueId = id));
    log(`    ${up.id} running at ${up.ip}`);
    log("3/6 first contact: pinning the rescue instance's host key");
    const host = await pinHostKey(up.ip!, target.ssh, log);
    hostKey = host.presentedHostKey;
    log(`4/6 uploading ${await uploadScripts(host, o.paths)} script files; the toolchain bootstrap (rclone, jq)`);
    await ensureTools(host, o.paths);
    log(`5/6 mounting the scratch without formatting (prepare-scratch.sh --expect-data)`);
    await runRemote(host, "prepare-scratch.sh --expect-data", prepareScratchCommand(o.paths, scratch.id, o.timeouts.prepareSeconds), { timeoutSeconds: o.timeouts.prepareSeconds + 60 });
    log(`6/6 backing up inputs and outputs to r2:${target.r2.userFilesBucket}/scratch/ and verifying`);
    const backup = {
      endpoint: target.r2.endpoint, bucket: target.r2.userFilesBucket, secretsStdin: r2Secrets, timeoutSeconds: o.timeouts.backupSeconds,
      shrinkTolerance: o.shrink?.tolerance, acceptShrink: o.shrink?.accept, scratchStartsBlank: target.scratchIsDayScoped,
    };
    const out = await runRemote(host, "backup-mello.sh (scratch inputs,outputs)", backupCommand(o.paths, backup), { stdin: backup.secretsStdin, timeoutSeconds: o.timeouts.backupSeconds + 60 });
    // The script logs to stderr and ends with its step table (set, seconds, "verified <manifest>").
    backupSummary = `${out.stderr}\n${out.stdout}`.trim().split("\n").filter((l) => /BYTES_SENT|^STEP |verified|^\S+\s+[\d.]+\s+\S/.test(l)).slice(-8).join("\n");
    await runRemote(host, "unmounting the scratch", unmountCommand(o.paths), { timeoutSeconds: 60 }).catch((e: Error) => log(`    (unmount: ${e.message})`));
  } catch (e) {
    failure = e as Error;
  }
  return finish(api, target, o, { rescueId, failure, started, instanceType, pricePerHour, location, hostKey, backupSummary });
}

/**
 * An interrupted earlier rescue leaves its instance holding the scratch: recognised by its
 * hostname, it is deleted the same safe way (OS volume only), so running the rescue again converges.
 */
async function removeLeftoverRescue(api: RescueVerda, target: RescueTarget, o: RescueOptions): Promise<void> {
  const holder = (await api.getVolume(target.scratchVolumeId))?.instance_id;
  if (!holder || holder === target.instance.instanceId) return;
  const leftover = await api.getInstance(holder);
  if (!leftover || leftover.hostname !== rescueHostname(target.instance.hostname)) return;
  o.log(`    an earlier rescue's instance ${holder} (${leftover.status}) still holds the scratch: deleting it (OS volume only)`);
  await deleteRescueInstance(api, holder, target.scratchVolumeId, o.waits);
}

interface Outcome {
  rescueId?: string;
  failure?: Error;
  started: number;
  instanceType: string;
  pricePerHour: number;
  location: string;
  hostKey: string;
  backupSummary: string;
}

/** Deletes the rescue instance (never the scratch) whatever happened, and reports both outcomes. */
async function finish(api: RescueVerda, target: RescueTarget, o: RescueOptions, r: Outcome): Promise<RescueResult> {
  let osVolumeDeleted = false;
  let cleanupProblem: Error | undefined;
  if (r.rescueId) {
    o.log(`deleting rescue instance ${r.rescueId} with its OS volume; the scratch is detached, not deleted`);
    try {
      osVolumeDeleted = (await deleteRescueInstance(api, r.rescueId, target.scratchVolumeId, o.waits)).osVolumeDeleted;
    } catch (e) {
      cleanupProblem = e as Error;
    }
  }
  const cleanup = cleanupProblem
    ? `Rescue instance ${r.rescueId} could NOT be deleted (${cleanupProblem.message}): delete it in the Verda console, ticking ONLY its OS volume, never the scratch ${target.scratchVolumeId}. The state was not edited.`
    : `${r.rescueId ? `Rescue instance ${r.rescueId} deleted; ` : "No rescue instance was created; "}scratch ${target.scratchVolumeId} untouched and detached. The state was not edited.`;
  if (r.failure) {
    throw new RescueError(`rescue of stack ${target.stack} failed: ${r.failure.message}\nfix: remove the cause named above, then run \`npm run rescue -- --stack ${target.stack}\` again.`, cleanup);
  }
  if (cleanupProblem) throw new RescueError(`the backup of scratch ${target.scratchVolumeId} is verified in R2, but the rescue instance remains.`, cleanup);
  return {
    rescueInstanceId: r.rescueId!,
    instanceType: r.instanceType,
    pricePerHour: r.pricePerHour,
    location: r.location,
    scratchVolumeId: target.scratchVolumeId,
    hostKey: r.hostKey,
    backupSummary: r.backupSummary,
    osVolumeDeleted,
    seconds: Math.round((Date.now() - r.started) / 1000),
  };
}
