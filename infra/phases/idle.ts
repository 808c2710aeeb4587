// Layer `idle` (always up): mello, the R2 backup buckets and the Verda SSH keys. Costs mello + R2.
import * as pulumi from "@pulumi/pulumi";
import { secretOutput, type IdleConfig } from "../config";
import { SshKey } from "../providers";
import { Mello } from "../../components/mello";
import { Backups } from "../../components/backups";

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

  return {
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
