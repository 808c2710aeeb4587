// Layer `<env>-month`: the SFS for the period (seeded from R2 by a temporary loader) and, when
// scratch lives for the month, the scratch volume. Reads the idle layer through a StackReference.
import * as pulumi from "@pulumi/pulumi";
import { secretOutput, type MonthConfig } from "../config";
import { secretReference } from "./references";
import { SharedFilesystem, type LoaderArgs } from "../../components/shared-filesystem";
import type { BucketNames } from "../../components/backups";
import { serverlessMonth } from "./serverless";
import { environmentSshKeyIds, idleReference } from "./environment";

export function monthLayer(cfg: MonthConfig, idle: pulumi.StackReference = idleReference(cfg.stackRefs.idle)): Record<string, pulumi.Output<unknown>> {
  let loader: LoaderArgs | undefined;
  if (cfg.seed.loader) {
    pulumi.log.warn(
      `seed.loader is on: the loader instance ${cfg.seed.instanceType} bills until seeding is done and you run ` +
        `'scripts/pulumi config set --path comfyume:seed.loader false --stack ${cfg.stack}' and 'scripts/pulumi up --stack ${cfg.stack}'.`,
    );
    loader = {
      instanceType: cfg.seed.instanceType,
      image: cfg.seed.image,
      hostname: cfg.seed.hostname ?? `comfyume-${cfg.environment}-loader`,
      osVolumeSizeGb: cfg.seed.osVolumeSizeGb,
      sshKeyIds: environmentSshKeyIds(idle, cfg.environment),
      ssh: {
        user: cfg.ssh.user,
        port: cfg.ssh.port,
        privateKey: secretOutput(cfg.sshPrivateKey!),
        dialErrorLimit: cfg.ssh.dialErrorLimit,
        perDialTimeout: cfg.ssh.perDialTimeout,
      },
      r2: {
        endpoint: idle.requireOutput("r2Endpoint") as pulumi.Output<string>,
        accessKeyId: secretReference(idle, "r2AccessKeyId"),
        secretAccessKey: secretReference(idle, "r2SecretAccessKey"),
        buckets: idle.requireOutput("bucketNames") as pulumi.Output<BucketNames>,
      },
      scriptsDir: cfg.paths.scriptsDir,
      sfsMount: cfg.paths.sfsMount,
      hostEnv: cfg.hostEnv,
      sshHostOverride: cfg.ssh.hostOverride,
      timeouts: cfg.timeouts,
      layout: cfg.seed.layout,
      workerImageName: cfg.seed.workerImageName,
      publishManifest: cfg.seed.publishManifest,
    };
  }
  const sfs = new SharedFilesystem("shared-fs", {
    name: cfg.sfs.name,
    sizeGb: cfg.sfs.sizeGb,
    locationCode: cfg.sfs.location,
    protect: cfg.sfs.protect,
    adopt: cfg.sfs.adopt,
    loader,
    scratch:
      cfg.scratch.lifetime === "month"
        ? { name: cfg.scratch.name ?? `comfyume-${cfg.environment}-scratch`, sizeGb: cfg.scratch.sizeGb, deletePermanently: cfg.scratch.deletePermanently, adopt: cfg.scratch.adopt }
        : undefined,
  });

  // inference = serverless: the month owns the GPU workers as deployments at zero replicas.
  const serverless = cfg.inference === "serverless" ? serverlessMonth(cfg, sfs.volumeId) : {};
  return {
    ...serverless,
    sfsId: sfs.volumeId,
    sfsMountCommand: sfs.mountCommand,
    sfsPseudoPath: sfs.pseudoPath,
    sfsMountTarget: sfs.mountTarget,
    sfsSizeGb: sfs.sizeGb,
    sfsLocation: sfs.locationCode,
    scratchLifetime: pulumi.output(cfg.scratch.lifetime),
    ...(sfs.scratchVolumeId ? { scratchVolumeId: sfs.scratchVolumeId } : {}),
    loaderRunning: pulumi.output(cfg.seed.loader),
    seeded: sfs.seeded,
  };
}
