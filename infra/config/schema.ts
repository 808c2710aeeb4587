// Zod schemas for every non-secret `comfyume:*` setting. Built inside a function on purpose:
// nothing here is a module-level object a dynamic provider could capture when it is serialized.
import { z } from "zod";
import { moneySchemas } from "../money/settings";
import { environmentsSchema } from "./environments";

/** Accepts a number or a numeric string (`pulumi config set --path x 50` may store either). */
function intLike(min: number, max = Number.MAX_SAFE_INTEGER) {
  return z.preprocess(
    (v) => (typeof v === "string" && /^-?\d+$/.test(v.trim()) ? Number(v) : v),
    z.number("must be a whole number").int("must be a whole number").min(min, `must be at least ${min}`).max(max, `must be at most ${max}`),
  );
}

/** Accepts true/false or "true"/"false". */
function boolLike() {
  return z.preprocess((v) => (v === "true" ? true : v === "false" ? false : v), z.boolean("must be true or false"));
}

/** A fraction in [0, 1]; accepts a numeric string (`pulumi config set --path x 0.5` may store either). */
function fraction(meaning: string) {
  const message = `must be a number between 0 and 1 (${meaning})`;
  return z.preprocess(
    (v) => (typeof v === "string" && /^\s*-?(\d+\.?\d*|\.\d+)\s*$/.test(v) ? Number(v) : v),
    z.number(message).min(0, message).max(1, message),
  );
}

function str(description: string) {
  return z.string(`must be a string (${description})`).trim().min(1, `must not be empty (${description})`);
}

export function buildSchemas() {
  const sshPublicKey = z
    .string("must be an OpenSSH public key line")
    .trim()
    .regex(
      /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com) [A-Za-z0-9+/]+=*( \S.*)?$/,
      "must be an OpenSSH public key line such as 'ssh-ed25519 AAAAC3Nz... comment'",
    );
  const location = z
    .string("must be a Verda location code")
    .regex(/^[A-Z]{3}-\d{2}$/, "must be a Verda location code such as FIN-01");
  const hostname = z
    .string("must be a hostname")
    .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, "must be a lowercase hostname: letters, digits and '-', at most 63 characters");
  const absPath = z.string("must be an absolute path").regex(/^\/[A-Za-z0-9._\/-]*$/, "must be an absolute path without spaces");
  const cidr = z
    .string("must be a CIDR range")
    .regex(/^([0-9.]+\/\d{1,2}|[0-9a-fA-F:]+\/\d{1,3})$/, "must be CIDR ranges such as 203.0.113.7/32 or ::/0");
  const instanceType = z
    .string("must be a Verda instance type")
    .regex(/^[A-Za-z0-9]+(\.[A-Za-z0-9]+)+$/, "must be a Verda instance type such as 1A100.22V or CPU.4V.16G");
  const bucketName = z
    .string("must be a bucket name")
    .regex(/^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/, "must be an R2 bucket name: 3-63 lowercase letters, digits and '-'");
  const port = intLike(1, 65535);

  const stackRefs = z.strictObject({
    organization: str("the file backend's organization").default("organization"),
    idle: str("the idle stack's name").optional(),
    month: str("the month stack's name").optional(),
  });

  const verda = z.strictObject({
    location: location.default("FIN-01"),
    // The day stack re-reads the SFS mount target from the Verda API on every run (off: use the
    // month stack's recorded value, e.g. in unit tests without an API).
    liveSfsRead: boolLike().default(true),
    // Month/day stacks check balance, capacity (with fallbacks) and budget against the Verda API
    // before declaring anything (off: offline unit tests only; the budget override is for people).
    moneyGate: boolLike().default(true),
  });

  const ssh = z.strictObject({
    user: str("the login user on Verda instances").default("root"),
    port: port.default(22),
    // A fresh instance is not SSH-ready for a while: generous dial retries (15 s each).
    dialErrorLimit: intLike(1, 1000).default(40),
    perDialTimeout: intLike(1, 600).default(15),
    // Connect here instead of the instance's public IP (loopback test hosts, a bastion-less tunnel).
    hostOverride: str("the SSH address to use instead of the instance IP").optional(),
  });

  const paths = z.strictObject({
    sfsMount: absPath.default("/mnt/sfs"),
    scratchMount: absPath.default("/mnt/scratch"),
    scriptsDir: absPath.default("/opt/comfyume"),
    // Where this stack's scripts go on mello (writable by mello.sshUser). Default: one directory per stack
    // (infra/config.ts, defaultMelloScriptsDir), so stacks never overwrite each other's library.
    melloScriptsDir: absPath.optional(),
    // restore-instance's log, kept on the instance; the restore report is read from it.
    restoreLog: absPath.default("/var/log/comfyume/restore-instance.last.log"),
  });

  const timeouts = z.strictObject({
    mountSeconds: intLike(10).default(600),
    restoreSeconds: intLike(60).default(3600),
    seedSeconds: intLike(60).default(6 * 3600),
    backupSeconds: intLike(60).default(2 * 3600),
    hostKeyScanSeconds: intLike(10).default(600),
  });

  const dns = z.strictObject({
    zoneId: z.string("must be a Cloudflare zone id").regex(/^[0-9a-f]{32}$/, "must be a 32-character Cloudflare zone id"),
    name: str("the record name, e.g. comfy.example.net"),
    // Cloudflare v6 requires a TTL; 1 means automatic. 60 s keeps a blue-green switch quick.
    ttl: intLike(1, 86400).refine((v) => v === 1 || v >= 60, "must be 1 (automatic) or 60-86400 seconds").default(60),
    proxied: boolLike().default(false),
  });

  const melloCommon = {
    sshUser: str("mello's SSH user").default("root"),
    sshPort: port.default(22),
    hostKey: sshPublicKey,
  };

  const mello = z.discriminatedUnion(
    "mode",
    [
      z.strictObject({
        mode: z.literal("hetzner"),
        serverId: intLike(1),
        name: str("the Hetzner server name"),
        serverType: str("the Hetzner server type, e.g. cax31"),
        location: str("the Hetzner location, e.g. hel1"),
        image: str("the image the server was created from").default("ubuntu-24.04"),
        address: str("mello's SSH address").optional(),
        sshSourceIps: z.array(cidr, "must be a list of CIDR ranges").min(1, "must list at least one range").default(["0.0.0.0/0", "::/0"]),
        dns: dns.optional(),
        ...melloCommon,
      }),
      z.strictObject({
        mode: z.literal("external"),
        address: str("mello's SSH address"),
        ...melloCommon,
      }),
    ],
    { error: () => "mode must be 'hetzner' (adopt the Hetzner server) or 'external' (address and SSH user only)" },
  );

  const bucketNames = z.strictObject({
    models: bucketName.default("comfyume-model-vault-backups"),
    cache: bucketName.default("comfyume-cache-backups"),
    workerContainer: bucketName.default("comfyume-worker-container-backups"),
    userFiles: bucketName.default("comfyume-user-files-backups"),
  });

  const expiry = z.strictObject({
    prefix: z.string("must be an object key prefix").default(""),
    maxAgeDays: intLike(1, 3650),
  });

  const jurisdiction = z.enum(["default", "eu", "fedramp"], "must be default, eu or fedramp").default("eu");
  const accountId = z.string("must be a Cloudflare account id").regex(/^[0-9a-f]{32}$/, "must be a 32-character Cloudflare account id");
  const endpoint = z.url("must be an http(s) URL such as https://<account>.eu.r2.cloudflarestorage.com");

  const backups = z.discriminatedUnion(
    "mode",
    [
      z.strictObject({
        mode: z.literal("managed"),
        accountId,
        jurisdiction,
        buckets: bucketNames.default(bucketNames.parse({})),
        lifecycle: z.strictObject({ cache: expiry.optional(), userFiles: expiry.optional() }).default({}),
        tokenName: str("the R2 API token's name").default("comfyume-backups"),
        // Cloudflare permission group "Workers R2 Storage Bucket Item Write"; verify with the API if it changes.
        tokenPermissionGroupIds: z.array(str("a permission group id")).min(1).default(["2efd5506f9c8494dacb1fa10a3e7d5b6"]),
        endpoint: endpoint.optional(),
      }),
      z.strictObject({
        mode: z.literal("existing"),
        accountId: accountId.optional(),
        jurisdiction,
        buckets: bucketNames.default(bucketNames.parse({})),
        endpoint: endpoint.optional(),
      }),
    ],
    { error: () => "mode must be 'managed' (create buckets and a token) or 'existing' (given buckets and credentials)" },
  );

  const sshKeys = z.strictObject({
    admin: sshPublicKey,
    mello: sshPublicKey,
    adminName: str("the admin key's name at Verda").default("comfyume-admin"),
    melloName: str("mello's key name at Verda").default("comfyume-mello"),
  });

  // Adopt an existing Verda resource (made in the console) instead of creating it: docs/adopting.md.
  const adopt = z
    .strictObject({
      id: z.string("must be the Verda id (Verda console)").regex(/^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/, "must be a Verda id such as be539393-....").optional(),
      name: str("the exact name at Verda").optional(),
    })
    .refine((a) => a.id !== undefined || a.name !== undefined, "needs id or name: the existing resource's Verda id (preferred) or its exact name");

  const sfs = z.strictObject({
    name: str("the SFS name at Verda").optional(),
    adopt: adopt.optional(),
    sizeGb: intLike(1, 100_000).default(220),
    location: location.optional(),
    protect: boolLike().default(true),
  });

  const seed = z.strictObject({
    loader: boolLike().default(false),
    instanceType: instanceType.default("CPU.4V.16G"),
    image: str("the loader's OS image").default("ubuntu-24.04"),
    osVolumeSizeGb: intLike(20, 2000).default(50),
    hostname: hostname.optional(),
    // Flat buckets (the workshop's own: plain keys, dated tarballs, no manifests): seed-sfs.sh --layout flat.
    layout: z
      .enum(["manifest", "flat"], "must be 'manifest' (backup-to-r2.sh's manifests) or 'flat' (plain <model_type>/<file> keys and <name>-<YYYY-MM-DD>.tar.gz tarballs, no manifests)")
      .default("manifest"),
    workerImageName: str("the <image> of <image>-<YYYY-MM-DD>.tar.gz in a flat worker bucket holding several images").optional(),
    publishManifest: boolLike().default(false),
  });

  const scratch = z.strictObject({
    lifetime: z.enum(["day", "month"], "must be 'day' (fresh scratch each day) or 'month' (kept for the month)").default("day"),
    sizeGb: intLike(1, 100_000).default(50),
    name: str("the scratch volume's name at Verda").optional(),
    /** Adopt an existing block volume as the month's scratch (lifetime month only). */
    adopt: adopt.optional(),
    // Deleted volumes go to Verda's trash for 96 h (a safety net, billed) unless this is on.
    deletePermanently: boolLike().default(false),
  });

  const gpu = z.strictObject({
    instanceType: instanceType.optional(),
    image: str("the instance's OS image").optional(),
    spot: boolLike().default(false),
    hostname: hostname.optional(),
    description: z.string().optional(),
    osVolumeSizeGb: intLike(20, 4000).default(100),
    location: location.optional(),
    hostPublicKey: sshPublicKey.optional(),
    allowGpuForTesting: boolLike().default(false),
    /** Adopt an existing instance as the worker (kept: never replaced or deleted by the stack). */
    adopt: adopt.optional(),
  });

  const ipv4 = z.string("must be an IPv4 address").regex(/^(\d{1,3}\.){3}\d{1,3}$/, "must be an IPv4 address such as 100.64.0.12");

  // restore-instance settings (day layer). Both addresses are Tailscale addresses, not secrets.
  const restore = z.strictObject({
    expectedTailscaleIp: ipv4.optional(),
    redisHost: str("Redis on mello over Tailscale").optional(),
    redisPort: port.default(6379),
    healthTimeoutSeconds: intLike(10, 3600).default(300),
    skip: z
      .array(z.enum(["tailscale", "ssh-host-keys", "project", "config", "worker-image", "worker", "health-comfyui", "health-redis"], "must be restore-instance steps: tailscale, ssh-host-keys, project, config, worker-image, worker, health-comfyui, health-redis"))
      .default([]),
  });

  // Where the app (frontends, Redis, queue manager, admin, nginx) runs: on mello (the default), or on a
  // Verda CPU instance the month layer owns (docs/configuration.md, "Where the app runs"). Defaults are
  // today's values. On a day stack only `host` is read: the workers then take Redis from the month.
  const list = (what: string, item: z.ZodType<string>) =>
    z.array(item, `must be a list of ${what}`).min(1, `must list at least one ${what.replace(/s$/, "")}`);
  const relPath = z.string("must be a path relative to app.projectDir").regex(/^[A-Za-z0-9._-][A-Za-z0-9._\/-]*$/, "must be a path relative to app.projectDir, without spaces or '..'").refine((p) => !p.split("/").includes(".."), "must not contain '..'");
  const composeName = z.string("must be a compose name").regex(/^[a-z0-9][a-z0-9_.-]*$/, "must be a compose service or profile name: lowercase letters, digits, '-', '_' or '.'");
  const app = z.strictObject({
    host: z.enum(["mello", "verda"], "must be 'mello' (the app on mello) or 'verda' (on a Verda CPU instance the month stack owns)").default("mello"),
    instanceType: instanceType.default("CPU.8V.32G"),
    image: str("the app host's OS image").default("ubuntu-24.04"),
    location: location.optional(),
    /** Default comfyume-<env>-app. */
    hostname: hostname.optional(),
    osVolumeSizeGb: intLike(20, 4000).default(100),
    hostPublicKey: sshPublicKey.optional(),
    /** Adopt the running app instance (made in the console) instead of creating one: docs/adopting.md. */
    adopt: adopt.optional(),
    /** The app host's tailnet address (its restored Tailscale identity must come back with it). */
    expectedTailscaleIp: ipv4.optional(),
    /** How the day's workers reach its Redis: over the tailnet (expectedTailscaleIp) or at the instance's IP. */
    redisReach: z.enum(["tailnet", "instance-ip"], "must be 'tailnet' (the app host's Tailscale address) or 'instance-ip'").default("tailnet"),
    /** An explicit address for Redis instead (wins over redisReach). */
    redisHost: str("the address the workers reach the app's Redis at").optional(),
    redisPort: port.default(6379),
    healthTimeoutSeconds: intLike(10, 3600).default(300),
    /** The app host's backup set in the SFS cache. Default: its hostname. */
    backupSetName: hostname.optional(),
    projectDir: absPath.default("/home/dev/comfyume-v1"),
    /** The users' files on the app host. Default <projectDir>/data. */
    dataDir: absPath.optional(),
    dataDirs: list("directories under app.dataDir", composeName).default(["user_data", "outputs", "inputs"]),
    /** The user-files bucket the app host's files go to. Default: the idle stack's userFiles bucket. */
    backupBucket: bucketName.optional(),
    composeFiles: list("compose files", relPath).default(["docker-compose.yml", "docker-compose.users.yml"]),
    composeProfiles: z.array(composeName, "must be a list of compose profiles").default(["container-nginx"]),
    services: list("compose services", composeName).default(["nginx", "redis", "queue-manager", "admin", ...Array.from({ length: 20 }, (_, i) => `user${String(i + 1).padStart(3, "0")}`)]),
    /** Image tarballs `docker load`ed before the app starts when their image is absent (absolute paths on the host). */
    imageTarballs: z.array(absPath, "must be a list of absolute paths").default([]),
    restoreSkip: z.array(z.enum(["tailscale", "ssh-host-keys", "project", "config"], "must be restore-instance steps: tailscale, ssh-host-keys, project, config")).default([]),
  }).refine((a) => !a.adopt || a.host === "verda", {
    message: "is 'mello', but comfyume:app.adopt names an app instance to adopt: set app.host to verda (the month then owns that instance), or remove comfyume:app.adopt",
    path: ["host"],
  });

  // Non-secret environment put in front of every host script (sandbox roots and shims in tests).
  const hostEnv = z.record(
    z.string().regex(/^[A-Z_][A-Z0-9_]*$/, "names must be environment variable names such as COMFYUME_ROOT"),
    z.string("values must be strings"),
  );

  const backup = z.strictObject({
    /** backup-instance's set name in the SFS cache; stable across re-created instances. Default: the hostname. */
    setName: hostname.optional(),
    cronSchedule: z
      .string("must be a cron schedule")
      .regex(/^(\S+\s+){4}\S+$/, "must be a five-field cron schedule such as '17 * * * *'")
      .default("17 * * * *"),
    /**
     * A backup set whose file count or byte total falls below (1 - shrinkTolerance) x its last verified backup
     * fails the backup (an empty set always fails). Passed to the backup scripts as --shrink-tolerance.
     */
    shrinkTolerance: fraction("0.5 fails a set that shrank below half of its last verified backup").default(0.5),
    /** Sets the operator confirms may shrink (or be empty) this time, exactly as the failure message names them. */
    acceptShrink: z
      .array(str("a backup set name as printed in the failure message"), "must be a list of backup set names, as printed in the failure message")
      .default([]),
  });

  // ---- serverless GPU workers (comfyume:inference = serverless; docs/configuration.md "Serverless") ----
  const gpuName = z.string("must be a Verda serverless compute name").regex(/^[A-Za-z0-9][A-Za-z0-9 ._-]{0,31}$/, "must be a Verda serverless compute name such as H200 or B300");
  const nonNegative = (message: string) =>
    z.preprocess((v) => (typeof v === "string" && /^\s*\d+(\.\d+)?\s*$/.test(v) ? Number(v) : v), z.number(message).min(0, "must not be negative"));
  const price = nonNegative("must be a price per GPU-hour, e.g. 2.49");
  const serverlessScaling = z
    .strictObject({
      /** Replicas kept warm during the workshop hours (the month keeps 0). */
      minReplicas: intLike(0, 100).default(1),
      maxReplicas: intLike(1, 100).default(10),
      scaleUpDelaySeconds: intLike(0, 3600).default(0),
      scaleDownDelaySeconds: intLike(0, 86_400).default(300),
      queueLoadThreshold: intLike(1, 1000).default(2),
      concurrentRequestsPerReplica: intLike(1, 100).default(1),
      queueMessageTtlSeconds: intLike(60, 86_400).default(36_000),
    })
    .refine((s) => s.minReplicas <= s.maxReplicas, { message: "minReplicas must not exceed maxReplicas", path: ["minReplicas"] });
  const serverlessDeployment = z.strictObject({
    gpu: gpuName,
    spot: boolLike().default(false),
    gpus: intLike(1, 8).default(1),
    /** This deployment's day minimum/maximum, instead of scaling.minReplicas/maxReplicas (e.g. 0 for a fallback). */
    minReplicas: intLike(0, 100).optional(),
    maxReplicas: intLike(0, 100).optional(),
  });
  const serverless = z.strictObject({
    /** Deployment names are `<namePrefix>-<gpu>-<spot|on-demand>`. Default: comfyume-<environment>-worker. */
    namePrefix: hostname.optional(),
    image: str("the worker image, e.g. ghcr.io/ahelme/comfyume-worker:v1").optional(),
    deployments: z.array(serverlessDeployment, "must be a list of { gpu, spot } entries").min(1, "must list at least one { gpu, spot } entry").default([{ gpu: "H200", spot: true, gpus: 1 }]),
    port: port.default(8188),
    /** The container's command line (default: ComfyUI with the SFS model paths and outputs on the SFS). */
    command: z.array(str("a command-line argument")).min(1).optional(),
    /** Private registry login; its token is the secret comfyume:registryToken. */
    registry: z.strictObject({ type: z.enum(["ghcr", "dockerhub"], "must be ghcr or dockerhub"), username: str("the registry user name") }).optional(),
    shmMb: z.union([z.literal(64), z.literal(128), z.literal(256), z.literal(512), z.literal(1024), z.literal(2048), z.literal(4096), z.literal(8192)], "must be 64, 128, ... 8192").default(64),
    /** The day's scaling, applied by the day stack and returned to zero when it is destroyed. */
    scaling: serverlessScaling.default(serverlessScaling.parse({})),
    /** Documented schedule: run the day `up` this many minutes before the workshop; counted in the forecast. */
    prewarmMinutes: intLike(0, 240).default(0),
    /** Estimated replica-hours above the minimum per workshop day (bursts under load), for the forecast. */
    burstReplicaHours: nonNegative("must be a number of replica-hours, e.g. 1.5").default(0),
    /** Price per GPU-hour by compute name (billing currency), when Verda's catalogue lists none. */
    prices: z.record(gpuName, z.strictObject({ onDemand: price, spot: price })).optional(),
    /**
     * Who backs up <sfs>/outputs (what the containers write) with the nightly destroy: `app-host` (the
     * month's app host, app.host = verda, which mounts the SFS) or `none` (said outright: not backed up).
     */
    outputsBackup: z.enum(["app-host", "none"], "must be 'app-host' (the app host backs up <sfs>/outputs nightly) or 'none'").default("app-host"),
  });

  return {
    stackRefs, verda, ssh, paths, timeouts, hostEnv, melloHostEnv: hostEnv, restore,
    mello, backups, sshKeys, sfs, seed, scratch, gpu, backup, app,
    serverless,
    // Environments (idle stack): each one's own login key and Tailscale identity (infra/config/environments.ts).
    environments: environmentsSchema(sshPublicKey, hostname, ipv4),
    // Cost guards (budget, forecast, capacity, watchdog), owned by infra/money.
    ...moneySchemas(),
  };
}

export type Schemas = ReturnType<typeof buildSchemas>;
export type SettingKey = keyof Schemas;
export type Settings = { [K in SettingKey]: z.output<Schemas[K]> };
export type MelloSettings = Settings["mello"];
export type BackupsSettings = Settings["backups"];
