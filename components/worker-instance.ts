// The worker machine: a day-scoped scratch volume (or the month's), the first-boot script (identity, or pre-mount tools),
// the Verda instance with the SFS and the scratch attached at creation, and the host key to pin.
//
// Scratch order: Verda attaches block volumes only at instance creation (existing_volumes) or while
// the instance is shut down. A day-scoped scratch is created blank just before the instance and
// attached at creation, so whatever provisioning does to it cannot lose data (there is none yet). A
// month-scoped scratch holds data after its first day: it is attached the same way, and prepare-scratch
// formats it on its first day only (marker on the SFS), then never again (see worker-restore.ts).
import * as pulumi from "@pulumi/pulumi";
import { Instance, StartupScript, Volume } from "../infra/providers";
import { SfsShare } from "../infra/providers/sfs-share";
import { adoptedOptions, adoptInput, type AdoptRef } from "./adoption";
import { firstBootScript, firstContactHostKey } from "./host-identity";
import type { SshTarget } from "./remote";
import { toolchainFirstBootScript } from "./toolchain";

export type ScratchArgs =
  | {
      lifetime: "day";
      /** The volume's name at Verda. */
      name: string;
      sizeGb: number;
      /** Skip Verda's 96 h trash when the volume is deleted. */
      deletePermanently: boolean;
    }
  | {
      lifetime: "month";
      /** The month stack's scratch volume (holds the users' files of earlier days). */
      volumeId: pulumi.Input<string>;
    };

export interface WorkerMachineSettings {
  instanceType: string;
  image: string;
  hostname: string;
  description: string;
  locationCode: string;
  /** Spot contract (cheaper, may be evicted) instead of pay-as-you-go. */
  spot: boolean;
  osVolumeSizeGb: number;
  /** Verda SSH key ids installed for the admin and mello. */
  sshKeyIds: pulumi.Input<pulumi.Input<string>[]>;
  /** Adopt this existing instance (config gpu.adopt) instead of deploying one: protected and retained. */
  adopt?: AdoptRef;
}

export interface WorkerInstanceArgs {
  /** What to deploy. */
  instance: WorkerMachineSettings;
  /** The worker's long-lived host key; unset = first-contact pinning (see host-identity.ts). */
  hostPublicKey?: string;
  /** The month's SFS, attached at creation; its mount target goes into the first-boot script. */
  sfs: { volumeId: pulumi.Input<string>; mountTarget: pulumi.Input<string> };
  /** A fresh day-scoped scratch to create, or the month's scratch to attach. */
  scratch: ScratchArgs;
  /** Where the first-boot script mounts the SFS (paths.sfsMount). */
  sfsMount: string;
  /** The backup set whose snapshot holds the identity (backup.setName). */
  backupSetName: string;
  /** SSH to the instance (user, port, key, dial limits); host and host key come from this component. */
  ssh: Omit<SshTarget, "host" | "hostKey">;
  /** SSH address to use instead of the instance IP (loopback test hosts). */
  sshHostOverride?: string;
  /** How long first contact keeps dialing a booting host (timeouts.hostKeyScanSeconds). */
  hostKeyScanSeconds: number;
  /**
   * Resources that used to be this component's children's parent (the GpuWorker before the split):
   * aliases keep their URNs, so existing stacks are not replaced.
   */
  formerParent?: pulumi.Resource;
}

/**
 * What the money gate's capacity fallback may change: type, location and contract. A deployed worker
 * keeps what it got until the stack is destroyed. The gate picks the first choice again once its
 * capacity is back, and these are replace keys of a delete-before-replace instance: without this, a
 * plain `up` would back up and delete the live worker mid-day.
 */
export const PLACEMENT_KEYS = ["instanceType", "locationCode", "isSpot", "contract"];

export const describePlacement = (p: { instanceType: string; locationCode: string; spot: boolean }) =>
  `${p.instanceType} ${p.spot ? "spot" : "on-demand"} in ${p.locationCode}`;

/**
 * Warns when the deployed placement (the instance's recorded state, known once it exists) is not what
 * the program declares now: a capacity fallback, or a config edit that waits for the next day.
 */
function warnWhenPlacementDiffers(instance: Instance, wanted: WorkerMachineSettings): void {
  // The Instance records its inputs as outputs; with ignoreChanges they stay as deployed.
  const recorded = instance as unknown as { instanceType: pulumi.Output<string>; locationCode: pulumi.Output<string>; isSpot: pulumi.Output<boolean | undefined> };
  pulumi.all([recorded.instanceType, recorded.locationCode, recorded.isSpot]).apply(([instanceType, locationCode, isSpot]) => {
    const deployed = { instanceType, locationCode, spot: Boolean(isSpot) };
    const declared = { instanceType: wanted.instanceType, locationCode: wanted.locationCode, spot: wanted.spot };
    if (!instanceType || describePlacement(deployed) === describePlacement(declared)) return;
    pulumi.log.warn(
      `${wanted.hostname} keeps the placement it was deployed with (${describePlacement(deployed)}), not ${describePlacement(declared)}: ` +
        "a running worker is never replaced for its placement (a capacity fallback, or a config edit). The configured placement applies " +
        "to the next instance, after the nightly destroy.",
      instance,
    );
  });
}

export class WorkerInstance extends pulumi.ComponentResource {
  public readonly instance: Instance;
  /** The day-scoped scratch this component created (none for a month-scoped scratch). */
  public readonly scratchVolume?: Volume;
  public readonly instanceId: pulumi.Output<string>;
  public readonly ip: pulumi.Output<string>;
  public readonly pricePerHour: pulumi.Output<number | undefined>;
  public readonly scratchVolumeId: pulumi.Output<string>;
  /** The host key every command pins. */
  public readonly hostKey: pulumi.Output<string>;
  /** How every command reaches the instance (pinned host key). */
  public readonly target: SshTarget;
  /** What must exist before anything runs on the instance: the instance and its scratch. */
  public readonly volumesReady: pulumi.Resource[];
  /** The instance is allowed on the SFS: what the mount (and only the mount) waits for. */
  public readonly sfsShared: pulumi.Resource;

  constructor(name: string, args: WorkerInstanceArgs, opts?: pulumi.ComponentResourceOptions) {
    super("comfyume:verda:WorkerInstance", name, {}, opts);
    const a = args;
    const moved = (): pulumi.CustomResourceOptions => ({
      parent: this,
      ...(a.formerParent ? { aliases: [{ parent: a.formerParent }] } : {}),
    });

    // 1. Scratch first (day-scoped: created blank, attached at instance creation).
    if (a.scratch.lifetime === "day") {
      this.scratchVolume = new Volume(
        `${name}-scratch`,
        { type: "NVMe", name: a.scratch.name, size: a.scratch.sizeGb, locationCode: a.instance.locationCode, permanent: a.scratch.deletePermanently },
        // It lives where the instance was placed (see PLACEMENT_KEYS): a location change must not replace it mid-day.
        { ...moved(), ignoreChanges: ["locationCode"] },
      );
      this.scratchVolumeId = this.scratchVolume.volumeId;
    } else {
      this.scratchVolumeId = pulumi.output(a.scratch.volumeId);
    }

    // 2. First-boot script: the pinned identity (it installs nfs-common itself, then mounts the SFS), else the
    // toolchain installed in the background while the machine boots (the chain's bootstraps wait for their part of it).
    const firstBoot = new StartupScript(
      `${name}-first-boot`,
      {
        name: `${a.instance.hostname}-first-boot`,
        script: a.hostPublicKey
          ? pulumi.output(a.sfs.mountTarget).apply((t) => firstBootScript({ sfsMountTarget: t, sfsMount: a.sfsMount, backupSet: a.backupSetName }))
          : toolchainFirstBootScript(),
      },
      moved(),
    );

    // 3. The instance, with the SFS and the scratch attached at creation.
    this.instance = new Instance(
      `${name}-instance`,
      {
        instanceType: a.instance.instanceType,
        image: a.instance.image,
        hostname: a.instance.hostname,
        description: a.instance.description,
        locationCode: a.instance.locationCode,
        sshKeyIds: pulumi.output(a.instance.sshKeyIds),
        startupScriptId: firstBoot.scriptId,
        osVolume: { name: `${a.instance.hostname}-os`, size: a.instance.osVolumeSizeGb },
        existingVolumes: pulumi.all([a.sfs.volumeId, this.scratchVolumeId]),
        isSpot: a.instance.spot,
        contract: a.instance.spot ? "SPOT" : "PAY_AS_YOU_GO",
        adopt: adoptInput(
          a.instance.adopt,
          "comfyume:gpu",
          { instanceType: "instanceType", hostname: "hostname", locationCode: "location", isSpot: "spot", image: "image" },
          "the instance",
        ),
      },
      // The startup script only matters at first boot: a new SFS pseudo path must not replace a running worker.
      // The placement is kept as deployed (PLACEMENT_KEYS). Delete before replace: the scratch can only be
      // attached to the new instance once the old one let go.
      { ...moved(), ignoreChanges: ["startupScriptId", ...PLACEMENT_KEYS], deleteBeforeReplace: true, ...adoptedOptions(a.instance.adopt) },
    );
    const instance = this.instance;
    warnWhenPlacementDiffers(instance, a.instance);
    this.instanceId = instance.instanceId;
    this.ip = instance.ip.apply((ip) => ip ?? "");
    this.pricePerHour = instance.pricePerHour;

    // 4. The host key to pin.
    if (a.hostPublicKey) {
      this.hostKey = pulumi.output(a.hostPublicKey);
    } else {
      const firstContact = firstContactHostKey(
        `${name}-host-key`,
        { target: { ...a.ssh, host: a.sshHostOverride ?? this.ip }, waitSeconds: a.hostKeyScanSeconds, triggers: [instance.instanceId] },
        { ...moved(), dependsOn: [instance] },
      );
      this.hostKey = firstContact.presentedHostKey;
    }
    const sshHost = a.sshHostOverride ? pulumi.output(a.sshHostOverride) : this.ip;
    this.target = { ...a.ssh, host: sshHost, hostKey: this.hostKey };
    // 5. The instance is allowed on the SFS (Verda "share settings") before anything mounts it: a deployed
    // worker got it at creation (no API call), an adopted instance may not have it yet.
    const sfsShare = new SfsShare(
      `${name}-sfs-share`,
      { sfsId: a.sfs.volumeId, instanceId: instance.instanceId, hostname: a.instance.hostname },
      { ...moved(), dependsOn: [instance] },
    );
    this.sfsShared = sfsShare;
    this.volumesReady = [instance, ...(this.scratchVolume ? [this.scratchVolume] : [])];

    this.registerOutputs({
      instanceId: this.instanceId,
      ip: this.ip,
      pricePerHour: this.pricePerHour,
      scratchVolumeId: this.scratchVolumeId,
      hostKey: this.hostKey,
    });
  }
}
