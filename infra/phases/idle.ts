// Layer `idle` (always up): mello, the R2 backup buckets and the Verda SSH keys. Costs mello + R2.
import * as pulumi from "@pulumi/pulumi";
import { secretOutput, type IdleConfig } from "../config";
import { SshKey } from "../providers";
import { Mello } from "../../components/mello";
import { Backups } from "../../components/backups";
import { Watchdog } from "../../components/watchdog";
import { parseMoneySettings } from "../money/settings";

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
  };
}
