// The month's Verda shared file system (SFS: models, worker image, restore cache) and its seeding
// from R2; optionally the scratch volume when scratch lives for the month.
//
// Seeding design: a cheap CPU "loader" instance exists only while `seed.loader` is true. It gets the
// SFS at creation; the toolchain bootstrap runs first (and fills the SFS toolchain cache for the
// month's workers), then a command mounts the SFS and runs seed-sfs (R2 -> SFS, resumable, ends with a
// manifest check). `up` with seed.loader=true seeds; `up` with seed.loader=false deletes the loader
// (the SFS stays). Why not one create-run-delete provider: every Verda call stays in the shared,
// tested providers; a failed seed leaves the loader up to inspect or re-run (seed-sfs resumes); and
// the flag is visible in the stack file and in every preview. The cost of forgetting the second `up`
// is a CPU instance at cents per hour, and the stack warns on every run while the loader exists.
import * as pulumi from "@pulumi/pulumi";
import { RemoteCommand } from "../infra/remote";
import { Instance, Volume } from "../infra/providers";
import { HostScripts } from "./host-scripts";
import { firstContactHostKey } from "./host-identity";
import { chain, commandDeadline, connectionArgs, scriptCommand, secretStdin, type SshTarget } from "./remote";
import { sfsMountTarget } from "./sfs-target";
import { adoptedOptions, adoptInput, type AdoptRef } from "./adoption";
import type { BucketNames } from "./backups";
import { BOOTSTRAP_FILES, bootstrapCommand, toolchainCacheDir, toolchainCommand } from "./toolchain";

export interface LoaderArgs {
  instanceType: string;
  image: string;
  hostname: string;
  osVolumeSizeGb: number;
  sshKeyIds: pulumi.Input<pulumi.Input<string>[]>;
  ssh: Omit<SshTarget, "host" | "hostKey">;
  r2: { endpoint: pulumi.Input<string>; accessKeyId: pulumi.Input<string>; secretAccessKey: pulumi.Input<string>; buckets: pulumi.Input<BucketNames> };
  scriptsDir: string;
  sfsMount: string;
  hostEnv: Record<string, string>;
  /** SSH address to use instead of the loader's IP (loopback test hosts). */
  sshHostOverride?: string;
  timeouts: { mountSeconds: number; seedSeconds: number; hostKeyScanSeconds: number };
  /** How the buckets are laid out: our manifests, or the workshop's flat keys and dated tarballs (seed-flat.sh). */
  layout?: "manifest" | "flat";
  /** Flat layout: which <image>-<date>.tar.gz when the worker bucket holds several images. */
  workerImageName?: string;
  /** Flat layout: also keep the models manifest in the bucket under .comfyume/ (append-only). */
  publishManifest?: boolean;
}

export interface SharedFilesystemArgs {
  name: string;
  sizeGb: number;
  locationCode: string;
  /** Protect the SFS and the month scratch (config sfs.protect). */
  protect: boolean;
  /** Adopt this existing SFS (config sfs.adopt) instead of creating one: protected and retained. */
  adopt?: AdoptRef;
  /** Present only while seeding (config `seed.loader`). */
  loader?: LoaderArgs;
  /** Present when scratch lives for the month. */
  scratch?: { name: string; sizeGb: number; deletePermanently: boolean; adopt?: AdoptRef };
}

export class SharedFilesystem extends pulumi.ComponentResource {
  public readonly volumeId: pulumi.Output<string>;
  public readonly mountCommand: pulumi.Output<string | undefined>;
  public readonly pseudoPath: pulumi.Output<string | undefined>;
  /** `host:/path` for mount-sfs, derived from the API's mount command. */
  public readonly mountTarget: pulumi.Output<string>;
  public readonly sizeGb: pulumi.Output<number>;
  public readonly locationCode: pulumi.Output<string>;
  public readonly scratchVolumeId?: pulumi.Output<string>;
  /** True once the seed command (seed-sfs, which verifies its manifest) succeeded in this run's state. */
  public readonly seeded: pulumi.Output<boolean>;

  constructor(name: string, args: SharedFilesystemArgs, opts?: pulumi.ComponentResourceOptions) {
    super("comfyume:verda:SharedFilesystem", name, {}, opts);
    if (args.sizeGb <= 0) throw new Error(`SharedFilesystem ${name}: sizeGb must be positive`);

    const sfs = new Volume(
      `${name}-sfs`,
      {
        type: "NVMe_Shared",
        name: args.name,
        size: args.sizeGb,
        locationCode: args.locationCode,
        permanent: false,
        adopt: adoptInput(args.adopt, "comfyume:sfs", { name: "name", size: "sizeGb", locationCode: "location" }, "the SFS"),
      },
      { parent: this, protect: args.protect, ...adoptedOptions(args.adopt) },
    );
    this.volumeId = sfs.volumeId;
    this.mountCommand = sfs.mountCommand;
    this.pseudoPath = sfs.pseudoPath;
    this.sizeGb = pulumi.output(args.sizeGb);
    this.locationCode = pulumi.output(args.locationCode);
    this.mountTarget = pulumi
      .all([sfs.mountCommand, sfs.target, sfs.pseudoPath])
      .apply(([mountCommand, target, pseudoPath]) => sfsMountTarget({ mountCommand, target, pseudoPath }, args.locationCode));

    if (args.scratch) {
      const scratch = new Volume(
        `${name}-scratch`,
        {
          type: "NVMe",
          name: args.scratch.name,
          size: args.scratch.sizeGb,
          locationCode: args.locationCode,
          permanent: args.scratch.deletePermanently,
          adopt: adoptInput(args.scratch.adopt, "comfyume:scratch", { name: "name", size: "sizeGb" }, "the scratch"),
        },
        // It holds the users' inputs and outputs of every day this month: protected with the SFS (the
        // policy pack refuses an unprotected month scratch; the end of a period unprotects both).
        { parent: this, protect: args.protect, ...adoptedOptions(args.scratch.adopt) },
      );
      this.scratchVolumeId = scratch.volumeId;
    }

    this.seeded = args.loader ? this.seed(name, args.loader, args.locationCode, sfs) : pulumi.output(false);

    this.registerOutputs({
      volumeId: this.volumeId,
      mountCommand: this.mountCommand,
      pseudoPath: this.pseudoPath,
      mountTarget: this.mountTarget,
      sizeGb: this.sizeGb,
      locationCode: this.locationCode,
      scratchVolumeId: this.scratchVolumeId,
      seeded: this.seeded,
    });
  }

  private seed(name: string, l: LoaderArgs, locationCode: string, sfs: Volume): pulumi.Output<boolean> {
    const loader = new Instance(
      `${name}-loader`,
      {
        instanceType: l.instanceType,
        image: l.image,
        hostname: l.hostname,
        description: "comfyume SFS loader (temporary: seeds the SFS from R2)",
        locationCode,
        sshKeyIds: pulumi.output(l.sshKeyIds),
        osVolume: { name: `${l.hostname}-os`, size: l.osVolumeSizeGb },
        // An SFS (NFS) attaches at creation without any risk to its data.
        existingVolumes: pulumi.all([sfs.volumeId]),
        isSpot: false,
      },
      { parent: this },
    );
    const host = l.sshHostOverride ? pulumi.output(l.sshHostOverride) : loader.ip.apply((ip) => ip ?? "");
    const firstContact = firstContactHostKey(
      `${name}-loader-host-key`,
      { target: { ...l.ssh, host }, waitSeconds: l.timeouts.hostKeyScanSeconds, triggers: [loader.instanceId] },
      { parent: this, dependsOn: [loader] },
    );
    const target: SshTarget = { ...l.ssh, host, hostKey: firstContact.presentedHostKey };
    const scripts = new HostScripts(
      `${name}-loader-scripts`,
      { target, remoteDir: l.scriptsDir, scripts: ["mount-sfs.sh", "seed-sfs.sh", ...(l.layout === "flat" ? ["seed-flat.sh"] : []), ...BOOTSTRAP_FILES] },
      { parent: this },
    );
    const mountTarget = pulumi.all([this.mountTarget, sfs.volumeId]);
    // The loader got the SFS by id at creation: it writes the SFS identity marker every later mount checks.
    // The loader's toolchain first: nfs-common to mount the SFS, then the rest with --cache on the SFS.
    // The month's first host downloads and fills the cache every day's worker installs from.
    const mountSfs = ([mt, sfsId]: [string, string]) =>
      scriptCommand({
        scriptsDir: l.scriptsDir,
        script: "mount-sfs.sh",
        args: [["--target", mt], ["--mount-point", l.sfsMount], "--no-fstab", ["--sfs-id", sfsId], "--write-marker"],
        timeoutSeconds: l.timeouts.mountSeconds,
        env: l.hostEnv,
      });
    const toolchain = toolchainCommand(
      `${name}-loader-toolchain`,
      {
        connection: connectionArgs(target),
        triggers: [loader.instanceId],
        bootstrapRuns: 2,
        otherSeconds: [l.timeouts.mountSeconds],
        commands: [
          bootstrapCommand({ scriptsDir: l.scriptsDir, env: l.hostEnv, preMount: true }),
          mountTarget.apply(mountSfs),
          bootstrapCommand({ scriptsDir: l.scriptsDir, env: l.hostEnv, cacheDir: toolchainCacheDir(l.sfsMount) }),
        ],
      },
      { parent: this, dependsOn: [scripts.files] },
    );
    const seedCommand = pulumi.all([mountTarget, l.r2.endpoint, l.r2.buckets]).apply(([mt, endpoint, buckets]) =>
      chain([
        mountSfs(mt),
        scriptCommand({
          scriptsDir: l.scriptsDir,
          script: "seed-sfs.sh",
          args: [
            ["--r2-endpoint", endpoint],
            ["--sfs", l.sfsMount],
            ["--models-bucket", buckets.models],
            ["--cache-bucket", buckets.cache],
            ["--worker-bucket", buckets.workerContainer],
            ...flatSeedArgs(l),
          ],
          timeoutSeconds: l.timeouts.seedSeconds,
          env: l.hostEnv,
          readsStdin: true,
        }),
      ]),
    );
    const seed = new RemoteCommand(
      `${name}-seed`,
      {
        connection: connectionArgs(target),
        create: seedCommand,
        stdin: secretStdin({ R2_ACCESS_KEY_ID: l.r2.accessKeyId, R2_SECRET_ACCESS_KEY: l.r2.secretAccessKey }),
        // Secret-bearing script: no output kept, outputs encrypted.
        logging: "none",
        timeoutSeconds: commandDeadline(l.timeouts.mountSeconds, l.timeouts.seedSeconds),
      },
      { parent: this, dependsOn: [scripts.files, toolchain], additionalSecretOutputs: ["stdout", "stderr"] },
    );
    return seed.stdout.apply(() => true);
  }
}

/** seed-sfs.sh arguments for the flat layout; none for manifests (that command line is as it always was). */
function flatSeedArgs(l: LoaderArgs): (string | [string, string])[] {
  if (l.layout !== "flat") return [];
  return [
    ["--layout", "flat"],
    ...(l.workerImageName ? [["--worker-image-name", l.workerImageName] as [string, string]] : []),
    ...(l.publishManifest ? ["--publish-manifest"] : []),
  ];
}
