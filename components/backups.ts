// The four R2 backup buckets (append-only, so protected) and an API token scoped to exactly these
// buckets, whose S3 credentials the host scripts use. Or, by config, existing buckets and given keys.
import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import * as cloudflare from "@pulumi/cloudflare";
import type { BackupsSettings } from "../infra/config";

export const BUCKET_ROLES = ["models", "cache", "workerContainer", "userFiles"] as const;
export type BucketRole = (typeof BUCKET_ROLES)[number];
export type BucketNames = Record<BucketRole, string>;

export interface BackupsArgs {
  settings: BackupsSettings;
  /** For mode "existing": the given S3 credentials (Pulumi secrets). */
  existingCredentials?: { accessKeyId: pulumi.Input<string>; secretAccessKey: pulumi.Input<string> };
}

const ROLE_SLUG: Record<BucketRole, string> = {
  models: "models",
  cache: "cache",
  workerContainer: "worker-container",
  userFiles: "user-files",
};

export function r2Endpoint(accountId: string, jurisdiction: string): string {
  const zone = jurisdiction === "default" ? "" : `${jurisdiction}.`;
  return `https://${accountId}.${zone}r2.cloudflarestorage.com`;
}

/** The token policy's resource map: one entry per bucket, nothing else in the account. */
export function bucketResources(accountId: string, jurisdiction: string, buckets: string[]): Record<string, string> {
  return Object.fromEntries(buckets.map((b) => [`com.cloudflare.edge.r2.bucket.${accountId}_${jurisdiction}_${b}`, "*"]));
}

/** R2's S3 secret access key is the SHA-256 hex digest of the API token value. */
export function s3SecretFromTokenValue(tokenValue: string): string {
  return createHash("sha256").update(tokenValue).digest("hex");
}

export class Backups extends pulumi.ComponentResource {
  public readonly bucketNames: pulumi.Output<BucketNames>;
  public readonly endpoint: pulumi.Output<string>;
  /** Secret. */
  public readonly accessKeyId: pulumi.Output<string>;
  /** Secret. */
  public readonly secretAccessKey: pulumi.Output<string>;

  constructor(name: string, args: BackupsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("comfyume:backups:Backups", name, {}, opts);
    const s = args.settings;
    const names = s.buckets;

    if (s.mode === "existing") {
      if (!args.existingCredentials) throw new Error("Backups: mode 'existing' needs existingCredentials (comfyume:r2AccessKeyId, comfyume:r2SecretAccessKey)");
      if (!s.endpoint && !s.accountId) throw new Error("Backups: mode 'existing' needs backups.endpoint or backups.accountId");
      this.bucketNames = pulumi.output(names);
      this.endpoint = pulumi.output(s.endpoint ?? r2Endpoint(s.accountId as string, s.jurisdiction));
      this.accessKeyId = pulumi.secret(args.existingCredentials.accessKeyId);
      this.secretAccessKey = pulumi.secret(args.existingCredentials.secretAccessKey);
    } else {
      const buckets = {} as Record<BucketRole, cloudflare.R2Bucket>;
      for (const role of BUCKET_ROLES) {
        buckets[role] = new cloudflare.R2Bucket(
          `${name}-${ROLE_SLUG[role]}`,
          { accountId: s.accountId, name: names[role], jurisdiction: s.jurisdiction },
          // R2 is append-only by policy: a bucket is never deleted by Pulumi (protect refuses it; after a
          // deliberate unprotect, retainOnDelete still only drops it from the state).
          { parent: this, protect: true, retainOnDelete: true },
        );
      }
      const expiring: [BucketRole, { prefix: string; maxAgeDays: number } | undefined][] = [
        ["cache", s.lifecycle.cache],
        ["userFiles", s.lifecycle.userFiles],
      ];
      for (const [role, rule] of expiring) {
        if (!rule) continue;
        new cloudflare.R2BucketLifecycle(
          `${name}-${ROLE_SLUG[role]}-lifecycle`,
          {
            accountId: s.accountId,
            bucketName: buckets[role].name,
            jurisdiction: s.jurisdiction,
            rules: [
              {
                id: `expire-dated-${ROLE_SLUG[role]}`,
                enabled: true,
                conditions: { prefix: rule.prefix },
                // maxAge is in seconds.
                deleteObjectsTransition: { condition: { type: "Age", maxAge: rule.maxAgeDays * 86_400 } },
              },
            ],
          },
          { parent: this },
        );
      }
      const token = new cloudflare.AccountToken(
        `${name}-token`,
        {
          accountId: s.accountId,
          name: s.tokenName,
          policies: [
            {
              effect: "allow",
              permissionGroups: s.tokenPermissionGroupIds.map((id) => ({ id })),
              // Cloudflare v6 takes the resource map as a JSON string.
              resources: pulumi
                .all(BUCKET_ROLES.map((r) => buckets[r].name))
                .apply((bucketList) => JSON.stringify(bucketResources(s.accountId, s.jurisdiction, bucketList))),
            },
          ],
        },
        { parent: this, additionalSecretOutputs: ["value"] },
      );
      this.bucketNames = pulumi
        .all(BUCKET_ROLES.map((r) => buckets[r].name))
        .apply(([models, cache, workerContainer, userFiles]) => ({ models, cache, workerContainer, userFiles }) as BucketNames);
      this.endpoint = pulumi.output(s.endpoint ?? r2Endpoint(s.accountId, s.jurisdiction));
      this.accessKeyId = pulumi.secret(token.id);
      this.secretAccessKey = pulumi.secret(token.value.apply(s3SecretFromTokenValue));
    }

    this.registerOutputs({
      bucketNames: this.bucketNames,
      endpoint: this.endpoint,
      accessKeyId: this.accessKeyId,
      secretAccessKey: this.secretAccessKey,
    });
  }
}
