// ServerlessWorkers: the GPU workers as Verda serverless container deployments, one per GPU × pricing
// option (e.g. H200 spot, H200 on-demand, B300 spot, B300 on-demand), all from one image with the month's
// SFS mounted by volume id. Sensitive values (HF token, registry token) become Verda secrets that the
// deployments reference by name; nothing sensitive is ever plain env. The month layer declares it at zero
// replicas with `dayOwnsScaling` (infra/phases/month.ts); the day layer's DeploymentScaling sets the day's scaling.
import * as pulumi from "@pulumi/pulumi";
import { ContainerDeployment, RegistryCredentials, Secret, type ScalingInput } from "../infra/providers";
import { validateDeployment } from "../infra/providers/container-validation";
import { UNKNOWN } from "../infra/providers/shared";

export interface ServerlessWorkerOption {
  /** Serverless compute name, e.g. "H200", "B300". */
  gpu: string;
  /** Spot pricing (cheaper, can be interrupted) or on-demand. */
  spot: boolean;
  /** GPUs per replica (default 1). */
  gpus?: number;
}

export interface ServerlessWorkersArgs {
  /** Deployment names are `<namePrefix>-<gpu>-<spot|on-demand>` in lowercase, e.g. "comfyume-worker-h200-spot". */
  namePrefix: string;
  /** One deployment per entry; at least one, no duplicates. */
  options: ServerlessWorkerOption[];
  /** Worker image, e.g. "ghcr.io/ahelme/comfyume-worker:v1". */
  image: pulumi.Input<string>;
  /** Port ComfyUI listens on (default 8188); the health check asks `/` on it. */
  port?: number;
  /** Arguments of the container (entrypoint override `cmd`), e.g. the ComfyUI command line. */
  command?: string[];
  /** The month's SFS volume id (mounted at `sfsMountPath`). */
  sfsVolumeId: pulumi.Input<string>;
  /** Where the SFS is mounted in the container (default "/mnt/sfs"). */
  sfsMountPath?: string;
  /** Plain, non-sensitive environment (names that look sensitive are refused: use `secrets`). */
  env?: Record<string, string>;
  /** Environment variable → value (a Pulumi secret); each becomes a Verda secret referenced by name. */
  secrets?: Record<string, pulumi.Input<string>>;
  /** Private registry login (e.g. ghcr with a token); absent = public image. */
  registry?: { type: "ghcr" | "dockerhub"; username: string; accessToken: pulumi.Input<string> };
  /** Scaling of every deployment (the month keeps 0 replicas; the day raises minReplicas). */
  scaling: ScalingInput;
  /** Shared memory for the container in MiB (default 64). */
  shmMb?: number;
  /**
   * Another stack (the day) owns the live scaling through a DeploymentScaling: `scaling` is only the
   * deployments' initial scaling and this stack never reverts the day's (ignoreChanges on scaling).
   */
  dayOwnsScaling?: boolean;
}

/** The deployment name for one option (lowercase; spaces and other characters become '-'). */
export function deploymentName(prefix: string, option: ServerlessWorkerOption): string {
  return `${prefix}-${option.gpu}-${option.spot ? "spot" : "on-demand"}`.toLowerCase().replace(/[^a-z0-9-]+/g, "-");
}

/** What only the component knows (names, options); the container rules are ContainerDeployment's own check. */
function validate(args: ServerlessWorkersArgs): void {
  const problems: string[] = [];
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(args.namePrefix)) problems.push(`namePrefix ${JSON.stringify(args.namePrefix)} must be lowercase letters, digits and '-', e.g. "comfyume-worker"`);
  if (args.options.length === 0) problems.push('options must list at least one GPU × pricing option, e.g. [{ gpu: "H200", spot: true }]');
  const names = args.options.map((o) => deploymentName(args.namePrefix, o));
  const duplicates = names.filter((n, i) => names.indexOf(n) !== i);
  if (duplicates.length > 0) problems.push(`options repeat ${[...new Set(duplicates)].join(", ")}: list each GPU × pricing once`);
  for (const name of Object.keys(args.secrets ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) problems.push(`secrets.${name} is not a valid environment variable name`);
  }
  // The same rules the provider's check applies (sensitive env names, env/secret overlap, mounts, scaling),
  // run here too so a bad setting fails before any resource is declared.
  const plainOrUnknown = <T>(v: pulumi.Input<T> | undefined) => (typeof v === "string" || typeof v === "number" ? v : UNKNOWN);
  const shape = {
    name: names[0] ?? args.namePrefix,
    compute: { name: args.options[0]?.gpu ?? "GPU", size: args.options[0]?.gpus ?? 1 },
    containers: [{ image: plainOrUnknown(args.image), port: args.port ?? 8188, env: args.env, secretEnv: Object.fromEntries(Object.keys(args.secrets ?? {}).map((k) => [k, UNKNOWN])), mounts: [{ type: "memory", sizeMb: args.shmMb ?? 64 }] }],
    scaling: args.scaling,
  } as unknown as Parameters<typeof validateDeployment>[0];
  for (const f of validateDeployment(shape)) if (f.property !== "name") problems.push(f.reason.replace(/^containers\[0\]\./, ""));
  if (problems.length > 0) throw new Error(`ServerlessWorkers ${args.namePrefix}: ${problems.join("; ")}`);
}

export class ServerlessWorkers extends pulumi.ComponentResource {
  /** Deployment name → endpoint base URL (what the queue manager calls). */
  readonly endpoints: Record<string, pulumi.Output<string>>;
  readonly deployments: ContainerDeployment[];

  constructor(name: string, args: ServerlessWorkersArgs, opts?: pulumi.ComponentResourceOptions) {
    validate(args);
    super("comfyume:serverless:ServerlessWorkers", name, {}, opts);
    const child = { parent: this };
    const secretEnv: Record<string, pulumi.Output<string>> = {};
    for (const [envName, value] of Object.entries(args.secrets ?? {})) {
      const secretName = envName.toLowerCase().replace(/_/g, "-");
      secretEnv[envName] = new Secret(`${name}-secret-${secretName}`, { name: `${args.namePrefix}-${secretName}`.slice(0, 56), value }, child).verdaName;
    }
    const registry = args.registry && new RegistryCredentials(`${name}-registry`, { name: `${args.namePrefix}-registry`.slice(0, 56), ...args.registry }, child);
    const port = args.port ?? 8188;

    this.deployments = args.options.map((option) => {
      const deployment = deploymentName(args.namePrefix, option);
      return new ContainerDeployment(
        `${name}-${deployment.slice(args.namePrefix.length + 1)}`,
        {
          name: deployment,
          compute: { name: option.gpu, size: option.gpus ?? 1 },
          isSpot: option.spot,
          registryCredentials: registry?.verdaName,
          containers: [
            {
              image: args.image,
              port,
              healthcheck: { path: "/", port },
              command: args.command,
              env: args.env,
              secretEnv,
              mounts: [
                { type: "scratch", path: "/data" },
                { type: "memory", path: "/dev/shm", sizeMb: args.shmMb ?? 64 },
                { type: "shared", path: args.sfsMountPath ?? "/mnt/sfs", volumeId: args.sfsVolumeId },
              ],
            },
          ],
          scaling: args.scaling,
        },
        args.dayOwnsScaling ? { ...child, ignoreChanges: ["scaling"] } : child,
      );
    });
    this.endpoints = Object.fromEntries(this.deployments.map((d, i) => [deploymentName(args.namePrefix, args.options[i]!), d.endpointBaseUrl]));
    this.registerOutputs({ endpoints: this.endpoints });
  }
}
