// Layer `idle` (always up): mello, the R2 backup buckets and the Verda SSH keys. Costs mello + R2.
import * as pulumi from "@pulumi/pulumi";
import { secretOutput, type IdleConfig } from "../config";
import { SshKey } from "../providers";
import { Mello } from "../../components/mello";
import { Backups } from "../../components/backups";
import { Watchdog } from "../../components/watchdog";
import { parseMoneySettings } from "../money/settings";
import { loginKeyName, publishedEnvironments } from "../config/environments";

export function idleLayer(cfg: IdleConfig): Record<string, pulumi.Output<unknown>> {
  const mello = new Mello("mello", { settings: cfg.mello });
  const backups = new Backups("backups", {
    settings: cfg.backups,
    existingCredentials: cfg.r2Credentials && {
      accessKeyId: secretOutput(cfg.r2Credentials.accessKeyId),
      secretAccessKey: secretOutput(cfg.r2Credentials.secretAccessKey),
    },
  });
  // Both keys go on every instance: the admin's for Pulumi, mello's so mello can reach the worker.
  const adminKey = new SshKey("verda-ssh-admin", { name: cfg.sshKeys.adminName, publicKey: cfg.sshKeys.admin });
  const melloKey = new SshKey("verda-ssh-mello", { name: cfg.sshKeys.melloName, publicKey: cfg.sshKeys.mello });
  // An environment with its own login key gets it (and mello's) on its instances instead of the admin's.
  const keysByEnvironment: Record<string, pulumi.Output<string[]>> = {};
  for (const [env, entry] of Object.entries(cfg.environments)) {
    if (!entry.loginKey) continue;
    const key = new SshKey(`verda-ssh-env-${env}`, { name: loginKeyName(env, entry), publicKey: entry.loginKey });
    keysByEnvironment[env] = pulumi.all([key.keyId, melloKey.keyId]);
  }
  const environments = Object.keys(cfg.environments).length > 0;

  const watchdog = parseMoneySettings(cfg.money).watchdog;
  if (watchdog.enabled) {
    new Watchdog("watchdog", {
      settings: watchdog,
      scriptsDir: "/opt/comfyume",
      redisPassword: cfg.redisPassword && secretOutput(cfg.redisPassword),
      mello: {
        host: mello.address,
        port: mello.sshPort,
        user: mello.sshUser,
        hostKey: mello.hostKey,
        privateKey: secretOutput(cfg.sshPrivateKey!),
        dialErrorLimit: 10,
        perDialTimeout: 15,
      },
    });
  }

  return {
    watchdogEnabled: pulumi.output(watchdog.enabled),
    melloAddress: mello.address,
    melloSshUser: mello.sshUser,
    melloSshPort: mello.sshPort,
    melloHostKey: mello.hostKey,
    // Only a Hetzner-managed mello has a public IPv4 of its own to report.
    ...(mello.managed ? { melloPublicIpv4: mello.publicIpv4 } : {}),
    bucketNames: backups.bucketNames,
    r2Endpoint: backups.endpoint,
    r2AccessKeyId: backups.accessKeyId,
    r2SecretAccessKey: backups.secretAccessKey,
    verdaSshKeyIds: pulumi.all([adminKey.keyId, melloKey.keyId]),
    // Read by month/day stacks (infra/phases/environment.ts); absent when no environment is registered.
    ...(environments ? { environments: pulumi.output(publishedEnvironments(cfg.environments)), verdaSshKeyIdsByEnvironment: pulumi.output(keysByEnvironment) } : {}),
  };
}
