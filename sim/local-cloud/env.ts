// The environment an operator (or the rehearsal) hands to scripts/pulumi and uses to configure the
// stacks against the local cloud. Names: VERDA_* are read by the Verda providers; COMFYUME_SIM_*
// are values to put into stack config (see docs/rehearsal.md, "Driving stacks by hand").
export interface EnvInputs {
  dir: string;
  verda: { baseUrl: string; origin: string; clientId: string; clientSecret: string };
  s3: { endpoint: string; accessKeyId: string; secretAccessKey: string };
  sshPort: number;
  adminKeyFile: string;
  adminPublicKey: string;
  mello: { host: string; port: number; user: string; hostKey: string; publicKey: string };
  redis: { host: string; port: number; password: string };
  tailscaleAuthKey: string;
  worker: { backupSet: string; hostPublicKey: string; tailscaleIp: string } | undefined;
  pulumi: { projectDir: string; backendUrl: string; passphrase: string };
}

export function cloudEnv(i: EnvInputs): Record<string, string> {
  return {
    VERDA_BASE_URL: i.verda.baseUrl,
    VERDA_CLIENT_ID: i.verda.clientId,
    VERDA_CLIENT_SECRET: i.verda.clientSecret,
    // Throwaway state and stack files: `scripts/pulumi -C "$COMFYUME_SIM_PROJECT_DIR" ...`.
    PULUMI_BACKEND_URL: i.pulumi.backendUrl,
    PULUMI_CONFIG_PASSPHRASE: i.pulumi.passphrase,
    COMFYUME_SIM_PROJECT_DIR: i.pulumi.projectDir,
    COMFYUME_SIM_DIR: i.dir,
    COMFYUME_SIM_CONTROL_URL: `${i.verda.origin}/_sim`,
    // R2: backups.mode=existing, backups.endpoint, secrets comfyume:r2AccessKeyId / r2SecretAccessKey.
    COMFYUME_SIM_R2_ENDPOINT: i.s3.endpoint,
    COMFYUME_SIM_R2_ACCESS_KEY_ID: i.s3.accessKeyId,
    COMFYUME_SIM_R2_SECRET_ACCESS_KEY: i.s3.secretAccessKey,
    // SSH: ssh.port on every stack; the admin key is comfyume:sshPrivateKey and sshKeys.admin.
    COMFYUME_SIM_SSH_PORT: String(i.sshPort),
    COMFYUME_SIM_ADMIN_KEY_FILE: i.adminKeyFile,
    COMFYUME_SIM_ADMIN_PUBLIC_KEY: i.adminPublicKey,
    // mello: mello.mode=external with address, sshPort, sshUser, hostKey; sshKeys.mello.
    COMFYUME_SIM_MELLO_ADDRESS: i.mello.host,
    COMFYUME_SIM_MELLO_SSH_PORT: String(i.mello.port),
    COMFYUME_SIM_MELLO_SSH_USER: i.mello.user,
    COMFYUME_SIM_MELLO_HOST_KEY: i.mello.hostKey,
    COMFYUME_SIM_MELLO_PUBLIC_KEY: i.mello.publicKey,
    // restore.redisHost / redisPort and the comfyume:redisPassword secret.
    COMFYUME_SIM_REDIS_HOST: i.redis.host,
    COMFYUME_SIM_REDIS_PORT: String(i.redis.port),
    COMFYUME_SIM_REDIS_PASSWORD: i.redis.password,
    COMFYUME_SIM_TAILSCALE_AUTH_KEY: i.tailscaleAuthKey,
    // The seeded worker identity: backup.setName, gpu.hostPublicKey, restore.expectedTailscaleIp.
    ...(i.worker
      ? {
          COMFYUME_SIM_WORKER_BACKUP_SET: i.worker.backupSet,
          COMFYUME_SIM_WORKER_HOST_KEY: i.worker.hostPublicKey,
          COMFYUME_SIM_WORKER_TAILSCALE_IP: i.worker.tailscaleIp,
        }
      : {}),
  };
}
