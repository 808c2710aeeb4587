// The faults, one at a time, each through a real mechanism of the simulated cloud: Verda answers
// (simulator rules), sshd stopped or sessions killed, the S3 endpoint's port closed, bytes changed
// in the S3 server's storage, a full filesystem (tmpfs) under the SFS, the hourly cron job run for real,
// the scratch mount dropped, a volume left detaching, a device whose probe fails, the SFS pseudo
// path changed, the instance deleted through Verda's API. Production code knows none of this.
import type { FaultContext } from "./context";
import type { Phase } from "./table";

export interface Fault {
  name: string;
  phase: Phase;
  /** What the failure message must name (searched in the error lines only). */
  cause: RegExp;
  /** What the failure message must not say (dangerous advice). */
  forbidden?: RegExp;
  /** Morning faults: inject before the night's (plain) destroy rather than after it. */
  beforeNight?: boolean;
  inject(ctx: FaultContext): Promise<void>;
  /** Runs alongside the faulted command; the returned function stops it. */
  during?(ctx: FaultContext): () => Promise<void>;
  clear(ctx: FaultContext): Promise<void>;
  /** After clearing, before the retry (the rescue command). Returns notes for the table. */
  beforeRetry?(ctx: FaultContext): Promise<string[]>;
}

const nothing = async () => undefined;

function verdaDeleteFault(name: string, rule: object, cause: RegExp): Fault {
  return {
    name,
    phase: "nightly destroy",
    cause,
    inject: async (ctx) => void ctx.cloud.verda.setFaults(rule as never),
    clear: async (ctx) => ctx.cloud.verda.clearFaults(),
  };
}

export const FAULTS: Fault[] = [
  verdaDeleteFault("Verda 500 on delete", { type: "http", method: "PUT", path: "/v1/instances", status: 500 }, /\b500\b|server.?error/i),
  verdaDeleteFault("Verda 503 on delete", { type: "http", method: "PUT", path: "/v1/instances", status: 503 }, /\b503\b|unavailable/i),
  verdaDeleteFault("Verda 429 on delete", { type: "http", method: "PUT", path: "/v1/instances", status: 429, retry_after: 1 }, /\b429\b|rate.?limit/i),
  verdaDeleteFault("Verda 207 partial delete", { type: "action_partial", action: "delete", status_code: 500 }, /refused to delete|partial|207/i),
  {
    name: "instance host unreachable",
    phase: "nightly destroy",
    cause: /unreachable|ECONNREFUSED|connection refused|could not connect|timed out|dial/i,
    inject: (ctx) => ctx.cloud.faults.sshDown(ctx.workerId()),
    clear: (ctx) => ctx.cloud.faults.sshUp(ctx.workerId()),
  },
  {
    name: "SSH dropped mid-backup",
    phase: "nightly destroy",
    cause: /ssh|connection (lost|closed|reset)|channel|dropped|signal|killed|ECONNRESET/i,
    inject: nothing,
    during: (ctx) => ctx.onUserFileUpload(async () => {
      const id = ctx.workerId();
      await ctx.cloud.faults.sshDown(id); // kills the session and the backup it runs
      await ctx.cloud.faults.sshUp(id);
    }),
    clear: (ctx) => ctx.cloud.faults.sshUp(ctx.workerId()),
  },
  {
    name: "R2 down mid-upload",
    phase: "nightly destroy",
    cause: /R2 (is )?(down|unreachable)|cannot reach|connection refused|upload (to|of) [^\n]*r2:[^\n]* failed|unreachable/i,
    inject: nothing,
    during: (ctx) => ctx.onUserFileUpload(() => ctx.gate.down()),
    clear: (ctx) => ctx.gate.up(),
  },
  {
    name: "object corrupted in R2 before verify",
    phase: "nightly destroy",
    cause: /mismatch|altered|corrupt|sha-?256/i,
    inject: nothing,
    during: (ctx) => ctx.onUserFileUpload(async (bucket, key) => ctx.corruptObject(bucket, key)),
    clear: nothing, // the bad object stays in R2: the retry must not trust it
  },
  {
    name: "hourly job during the nightly backup",
    phase: "nightly destroy",
    cause: /lock|hourly|held|busy|changed/i,
    inject: nothing,
    during: (ctx) => ctx.hourlyJobLoop(),
    clear: nothing,
  },
  {
    name: "SFS full",
    phase: "nightly destroy",
    cause: /no space|full|ENOSPC/i,
    // The SFS fills up; the hourly job that runs before the night writes into it (and fails).
    inject: async (ctx) => {
      ctx.fillSfs();
      await ctx.runHourlyJobOnce();
    },
    clear: async (ctx) => ctx.unfillSfs(),
  },
  {
    name: "empty set (scratch mount gone)",
    phase: "nightly destroy",
    // Caught as a missing mount (the day scratch must be the mounted volume) or, for a month scratch, as an empty set.
    cause: /not a mount point|not mounted|empty|no files|0 files|shrink|fewer/i,
    // The scratch mount dropped and the app re-created its directories, empty, on the OS disk.
    inject: async (ctx) => void (await ctx.onWorker("umount /mnt/scratch && mkdir -p /mnt/scratch/inputs /mnt/scratch/outputs")),
    clear: async (ctx) => ctx.remountScratchIfGone(),
  },
  {
    name: "volume stuck detaching",
    phase: "morning up",
    cause: /detach/i,
    beforeNight: true,
    inject: async (ctx) => void ctx.cloud.verda.setFaults({ type: "volume_stuck_detaching", volume_id: ctx.scratchVolumeId } as never),
    clear: async (ctx) => {
      ctx.cloud.verda.clearFaults();
      await ctx.until(() => ctx.scratchStatus() === "detached", "the scratch volume to finish detaching");
    },
  },
  {
    name: "SFS pseudo path changed overnight",
    phase: "morning up",
    cause: /pseudo|mount|nfs|access denied|target/i,
    inject: async (ctx) => {
      const before = ctx.sfsPseudoPath();
      ctx.cloud.verda.setFaults({ type: "sfs_pseudo_path_change", volume_id: ctx.sfsVolumeId, after_ms: 0, count: 1 } as never);
      await ctx.until(() => ctx.sfsPseudoPath() !== before, "the SFS pseudo path to change");
    },
    clear: async (ctx) => ctx.cloud.verda.clearFaults(), // the new path stays: only the rule goes
  },
  {
    name: "scratch probe fails (month scratch)",
    phase: "morning up",
    cause: /blkid|probe|input\/output|I\/O|device/i,
    inject: async (ctx) => ctx.cloud.faults.probeIoError(ctx.scratchVolumeId, true),
    clear: async (ctx) => ctx.cloud.faults.probeIoError(ctx.scratchVolumeId, false),
  },
  {
    // Last: without a rescue the stack cannot be destroyed afterwards.
    name: "instance deleted out of band",
    phase: "nightly destroy",
    // Verda's word that the instance is gone, not "if the host is gone for good".
    cause: /instance\b[^\n]*\b(no longer exists|is gone|was deleted|not found|discontinued)|\b404\b/i,
    // The advice that sends a never-backed-up scratch to the trash (issue 11).
    forbidden: /(?<!(do not|never|don't) `?)pulumi state delete/i,
    inject: (ctx) => ctx.deleteWorkerOutOfBand(),
    clear: nothing,
    beforeRetry: (ctx) => ctx.rescue(),
  },
];

/** Faults whose name contains one of the filters (case-insensitive); all when none. */
export function selectFaults(filters: string[]): Fault[] {
  if (!filters.length) return FAULTS;
  const picked = FAULTS.filter((f) => filters.some((q) => f.name.toLowerCase().includes(q.toLowerCase())));
  if (!picked.length) throw new Error(`no fault matches ${filters.join(", ")}; faults: ${FAULTS.map((f) => f.name).join("; ")}`);
  return picked;
}
