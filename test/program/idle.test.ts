// Phase `idle`: adopted Hetzner mello with firewall and DNS, managed R2 buckets and token, Verda SSH keys.
import { createHash } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { IDLE_SECRET_KEYS, SECRETS, idleValues } from "../support/fixtures";
import { isVerda, plaintextView, isSecretOutput, plaintextOutputs, promiseOf, runProgram, type ProgramRun } from "../support/mock-program";

let run: ProgramRun;
beforeAll(async () => {
  run = await runProgram("idle", idleValues(), IDLE_SECRET_KEYS);
});

describe("mello (Hetzner, adopted)", () => {
  it("is a Mello component with its children parented and named after it", () => {
    expect(run.byName("mello").type).toBe("comfyume:mello:Mello");
    const children = run.resources.filter((r) => r.parentName === "mello").map((r) => `${r.type} ${r.name}`);
    expect(children).toEqual([
      "hcloud:index/server:Server mello-server",
      "hcloud:index/firewall:Firewall mello-firewall",
      "hcloud:index/firewallAttachment:FirewallAttachment mello-firewall-attachment",
      "cloudflare:index/dnsRecord:DnsRecord mello-dns",
    ]);
  });

  it("imports the existing server by id, protected, ignoring create-time fields", () => {
    const server = run.byName("mello-server");
    expect(server.opts.import).toBe("12345678");
    expect(server.opts.protect).toBe(true);
    // Even a deliberate unprotect and destroy only forgets it: mello is never deleted by Pulumi.
    expect(server.opts.retainOnDelete).toBe(true);
    expect(server.opts.ignoreChanges).toEqual(["image", "sshKeys", "userData"]);
    expect(server.inputs).toMatchObject({ name: "mello", serverType: "cax31", location: "hel1", ignoreRemoteFirewallIds: true });
  });

  it("opens SSH (restricted), HTTP/HTTPS and Tailscale UDP 41641, and attaches the firewall to the server", () => {
    const rules = run.byName("mello-firewall").inputs.rules as Record<string, unknown>[];
    expect(rules.map((r) => `${r.direction} ${r.protocol}/${r.port} from ${(r.sourceIps as string[]).join(",")}`)).toEqual([
      "in tcp/22 from 203.0.113.7/32",
      "in tcp/80 from 0.0.0.0/0,::/0",
      "in tcp/443 from 0.0.0.0/0,::/0",
      "in udp/41641 from 0.0.0.0/0,::/0",
    ]);
    const attachment = run.byName("mello-firewall-attachment").inputs;
    expect(attachment.serverIds).toEqual([12345678]);
    expect(typeof attachment.firewallId).toBe("number");
  });

  it("points the DNS record at the server with a TTL", () => {
    expect(run.byName("mello-dns").inputs).toMatchObject({ type: "A", name: "comfy.example.net", content: "198.51.100.5", ttl: 60, proxied: false });
  });
});

describe("backups (R2)", () => {
  it("creates the four buckets, protected, under the Backups component", () => {
    expect(run.byName("backups").type).toBe("comfyume:backups:Backups");
    const buckets = run.resources.filter((r) => r.type === "cloudflare:index/r2Bucket:R2Bucket");
    expect(buckets.map((b) => [b.name, b.inputs.name, b.opts.protect, b.parentName])).toEqual([
      ["backups-models", "comfyume-model-vault-backups", true, "backups"],
      ["backups-cache", "comfyume-cache-backups", true, "backups"],
      ["backups-worker-container", "comfyume-worker-container-backups", true, "backups"],
      ["backups-user-files", "comfyume-user-files-backups", true, "backups"],
    ]);
    for (const b of buckets) expect(b.inputs.jurisdiction).toBe("eu");
    // R2 is append-only: a bucket leaves the state at most, never Cloudflare.
    for (const b of buckets) expect(b.opts.retainOnDelete, b.name).toBe(true);
  });

  it("expires dated cache and user-file objects where config asks, maxAge in seconds", () => {
    const rule = (name: string) => (run.byName(name).inputs.rules as Record<string, unknown>[])[0];
    expect(rule("backups-cache-lifecycle")).toMatchObject({
      enabled: true,
      conditions: { prefix: "config/" },
      deleteObjectsTransition: { condition: { type: "Age", maxAge: 90 * 86_400 } },
    });
    expect(rule("backups-user-files-lifecycle")).toMatchObject({ conditions: { prefix: "dated/" }, deleteObjectsTransition: { condition: { maxAge: 30 * 86_400 } } });
    expect(run.resources.some((r) => r.name === "backups-models-lifecycle")).toBe(false);
  });

  it("scopes the API token to exactly the four buckets and keeps its value secret", () => {
    const token = run.byName("backups-token");
    expect(token.opts.additionalSecretOutputs).toContain("value");
    const policy = (token.inputs.policies as Record<string, unknown>[])[0];
    expect(Object.keys(JSON.parse(policy.resources as string)).sort()).toEqual(
      [
        "comfyume-cache-backups",
        "comfyume-model-vault-backups",
        "comfyume-user-files-backups",
        "comfyume-worker-container-backups",
      ].map((b) => `com.cloudflare.edge.r2.bucket.0123456789abcdef0123456789abcdef_eu_${b}`),
    );
  });

  it("exports the S3 credentials as secrets: key id = token id, secret = SHA-256 of the token value", async () => {
    expect(await isSecretOutput(run.outputs.r2AccessKeyId)).toBe(true);
    expect(await isSecretOutput(run.outputs.r2SecretAccessKey)).toBe(true);
    expect(await promiseOf(run.outputs.r2AccessKeyId)).toBe("backups-token-id");
    expect(await promiseOf(run.outputs.r2SecretAccessKey)).toBe(createHash("sha256").update("cf-token-value-secret").digest("hex"));
    expect(await promiseOf(run.outputs.r2Endpoint)).toBe("https://0123456789abcdef0123456789abcdef.eu.r2.cloudflarestorage.com");
  });
});

describe("Verda SSH keys and outputs", () => {
  it("registers the admin and mello keys and exports their ids", async () => {
    const keys = run.resources.filter((r) => isVerda(r, "SshKey"));
    expect(keys.map((k) => [k.name, k.inputs.name])).toEqual([
      ["verda-ssh-admin", "comfyume-admin"],
      ["verda-ssh-mello", "comfyume-mello"],
    ]);
    expect(await promiseOf(run.outputs.verdaSshKeyIds)).toEqual(["key-verda-ssh-admin", "key-verda-ssh-mello"]);
  });

  it("exports mello's address, SSH user and pinned host key, and the bucket names", async () => {
    expect(await promiseOf(run.outputs.melloAddress)).toBe("198.51.100.5");
    expect(await promiseOf(run.outputs.melloSshUser)).toBe("root");
    expect(String(await promiseOf(run.outputs.melloHostKey))).toMatch(/^ssh-ed25519 /);
    expect(await promiseOf(run.outputs.bucketNames)).toMatchObject({ models: "comfyume-model-vault-backups" });
  });

  it("never puts a secret value into a plaintext input", () => {
    const visible = JSON.stringify(run.resources.map((r) => plaintextView(r.inputs)));
    for (const secret of Object.values(SECRETS)) expect(visible).not.toContain(secret);
  });

  it("shows no secret value in any non-secret stack output", async () => {
    const shown = await plaintextOutputs(run.outputs);
    for (const secret of [...Object.values(SECRETS), "backups-token-id", "cf-token-value-secret"]) expect(shown).not.toContain(secret);
  });
});
