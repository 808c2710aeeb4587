// Stack settings for the rehearsal, from the local cloud's environment (docs/rehearsal.md maps
// each COMFYUME_SIM_* variable to its setting). Production paths are kept: each simulated host
// runs its commands in a mount namespace that maps them to its own root.
import { parse, stringify } from "yaml";

type Env = Record<string, string>;

export function idleStack(env: Env): object {
  return {
    "comfyume:phase": "idle",
    "comfyume:mello": {
      mode: "external",
      address: env.COMFYUME_SIM_MELLO_ADDRESS,
      sshPort: Number(env.COMFYUME_SIM_MELLO_SSH_PORT),
      sshUser: env.COMFYUME_SIM_MELLO_SSH_USER,
      hostKey: env.COMFYUME_SIM_MELLO_HOST_KEY,
    },
    "comfyume:backups": { mode: "existing", endpoint: env.COMFYUME_SIM_R2_ENDPOINT },
    "comfyume:sshKeys": { admin: env.COMFYUME_SIM_ADMIN_PUBLIC_KEY, mello: env.COMFYUME_SIM_MELLO_PUBLIC_KEY },
  };
}

const ssh = (env: Env) => ({ port: Number(env.COMFYUME_SIM_SSH_PORT), perDialTimeout: 5 });

/** The app on a Verda CPU instance (rehearse --app-on-verda): its seeded backup set and tailnet address. */
export interface AppOnVerda {
  backupSet: string;
  tailscaleIp: string;
}

/** Where the app host keeps the users' files in the rehearsal (app.dataDir). */
export const APP_DATA_DIR = "/home/dev/comfyume-v1/data";

/**
 * The month's app host (docs/configuration.md, "Where the app runs"): today's defaults except what the
 * sample checkout has (its one compose file), the worker tarball as the stand-in image, and Redis reached
 * at the instance's loopback address (the simulated tailnet routes nothing).
 */
export function appSettings(env: Env, app: AppOnVerda): object {
  return {
    host: "verda",
    expectedTailscaleIp: app.tailscaleIp,
    backupSetName: app.backupSet,
    redisReach: "instance-ip",
    redisPort: Number(env.COMFYUME_SIM_REDIS_PORT),
    healthTimeoutSeconds: 30,
    composeFiles: ["comfyui-worker/docker-compose.yml"],
    services: ["nginx", "redis", "queue-manager", "admin", "user001", "user002", "user003"],
    imageTarballs: ["/mnt/sfs/worker-image.tar.gz"],
    dataDir: APP_DATA_DIR,
    dataDirs: ["user_data", "outputs"],
  };
}

export function monthStack(env: Env, month: string, opts: { loader: boolean; protect: boolean; app?: AppOnVerda }): object {
  return {
    ...(opts.app ? { "comfyume:app": appSettings(env, opts.app) } : {}),
    "comfyume:phase": month,
    "comfyume:sfs": { sizeGb: 10, protect: opts.protect },
    "comfyume:seed": { loader: opts.loader },
    // The scratch volume lives for the month: users' inputs and outputs survive the nightly teardown.
    "comfyume:scratch": { lifetime: "month", sizeGb: 10 },
    "comfyume:ssh": ssh(env),
    "comfyume:timeouts": { hostKeyScanSeconds: 60 },
  };
}

export function dayStack(env: Env, day: string, month: string, appOnVerda = false): object {
  const restore = {
    expectedTailscaleIp: env.COMFYUME_SIM_WORKER_TAILSCALE_IP,
    // With the app on Verda the worker takes Redis from the month's app host (no restore.redisHost).
    ...(appOnVerda ? {} : { redisHost: env.COMFYUME_SIM_REDIS_HOST, redisPort: Number(env.COMFYUME_SIM_REDIS_PORT) }),
    healthTimeoutSeconds: 30,
  };
  return {
    ...(appOnVerda ? { "comfyume:app": { host: "verda" } } : {}),
    "comfyume:phase": day,
    "comfyume:stackRefs": { idle: "idle", month },
    "comfyume:gpu": { instanceType: "1H100.80S.32V", image: "ubuntu-24.04-cuda-12.8-open-docker" },
    "comfyume:scratch": { lifetime: "month", sizeGb: 10 },
    "comfyume:backup": { setName: env.COMFYUME_SIM_WORKER_BACKUP_SET },
    "comfyume:restore": restore,
    "comfyume:ssh": ssh(env),
    "comfyume:timeouts": { hostKeyScanSeconds: 60 },
  };
}

/**
 * A Pulumi.<stack>.yaml body with these plain settings. What the CLI wrote into the current file is
 * kept: the encryption salt and every secret (`{secure: ...}`), so settings change without re-entering secrets.
 */
export function stackFile(comment: string, config: object, current = ""): string {
  const existing = (parse(current) ?? {}) as { config?: Record<string, unknown>; encryptionsalt?: string };
  const secrets = Object.fromEntries(
    Object.entries(existing.config ?? {}).filter(([, v]) => typeof v === "object" && v !== null && "secure" in v),
  );
  const body: Record<string, unknown> = { config: { ...config, ...secrets } };
  if (existing.encryptionsalt) body.encryptionsalt = existing.encryptionsalt;
  return `# ${comment}\n${stringify(body)}`;
}
