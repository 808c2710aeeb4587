// Options of the local simulated cloud and their defaults (scaled down: a whole rehearsal in minutes).
import type { Timing } from "../simulator";

export interface LocalCloudOptions {
  /** Verda lifecycle timings in real ms (see docs/simulator.md); defaults below. */
  timing?: Partial<Timing>;
  /** Billing clock speed of the simulator (simulated ms per real ms). Default 1. */
  speed?: number;
  /** First three octets of the loopback addresses used (mello .2, instances from .10). Default "127.0.0". */
  loopbackNet?: string;
  /** SSH port of every simulated host (instances and mello). Default 2222. */
  sshPort?: number;
  /** Port of each instance's ComfyUI stand-in. Default 8188. */
  comfyUiPort?: number;
  /** Port of mello's Redis stand-in. Default 6379. */
  redisPort?: number;
  /** Sizes of the sample models in MiB (checkpoint, LoRA, VAE). Default [8, 2, 1]. */
  modelSizesMiB?: [number, number, number];
  /** Backup sets seeded into the cache bucket, one worker identity each. Default ["comfyume-workshop-day"]. */
  workerBackupSets?: string[];
  /** Size cap of a scratch volume's disk image (the volume's GB are not allocated). Default 64. */
  scratchImageMiB?: number;
  /** Longest time a startup script may run at first boot. Default 60 s. */
  startupScriptTimeoutMs?: number;
  /**
   * Debian packages every machine's image carries beyond the stock rootfs (e.g. ["jq", "rclone", "nfs-common"]
   * for hosts an admin prepared by hand before the project installed its own toolchain). Default [] (stock).
   */
  imagePackages?: string[];
  /** How often the cloud looks at the simulator (attachments, deletions, wait accounting). Default 25 ms. */
  pollMs?: number;
  /** Also seed the four buckets in the workshop's own flat, dated layout (sim/local-cloud/flat-buckets.ts). Default false. */
  flatBuckets?: boolean;
  log?: (line: string) => void;
}

export const DEFAULT_LOCAL_TIMING: Partial<Timing> = {
  orderedMs: 1_000,
  provisioningMs: 3_000,
  instanceActionMs: 500,
  instanceDeleteMs: 500,
  volumeCreateMs: 500,
  volumeAttachMs: 500,
};

export type ResolvedLocalCloudOptions = Required<Omit<LocalCloudOptions, "timing">> & { timing: Partial<Timing> };

export function resolveLocalCloudOptions(o: LocalCloudOptions = {}): ResolvedLocalCloudOptions {
  return {
    timing: { ...DEFAULT_LOCAL_TIMING, ...o.timing },
    speed: o.speed ?? 1,
    loopbackNet: o.loopbackNet ?? "127.0.0",
    sshPort: o.sshPort ?? 2222,
    comfyUiPort: o.comfyUiPort ?? 8188,
    redisPort: o.redisPort ?? 6379,
    modelSizesMiB: o.modelSizesMiB ?? [8, 2, 1],
    workerBackupSets: o.workerBackupSets ?? ["comfyume-workshop-day"],
    scratchImageMiB: o.scratchImageMiB ?? 64,
    startupScriptTimeoutMs: o.startupScriptTimeoutMs ?? 60_000,
    imagePackages: o.imagePackages ?? [],
    pollMs: o.pollMs ?? 25,
    flatBuckets: o.flatBuckets ?? false,
    log: o.log ?? (() => undefined),
  };
}
