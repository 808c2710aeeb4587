// Secret settings: set only with `pulumi config set --secret`, so they stay encrypted in the stack
// file and in state. Anything secret-looking found in plaintext config is rejected before any
// resource is created.

export type SecretKey = "sshPrivateKey" | "redisPassword" | "tailscaleAuthKey" | "r2AccessKeyId" | "r2SecretAccessKey" | "hfToken" | "registryToken";

export interface SecretSpec {
  what: string;
  /** How the operator feeds the value without putting it on a command line. */
  source: string;
  /** Light format check; the message never echoes the value. */
  check?: (value: string) => string | undefined;
}

export function secretSpecs(): Record<SecretKey, SecretSpec> {
  return {
    sshPrivateKey: {
      what: "the admin's SSH private key (reaches mello and the Verda instances)",
      source: "< ~/.ssh/comfyume_admin_ed25519",
      check: (v) =>
        /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]+-----END [A-Z ]*PRIVATE KEY-----/.test(v)
          ? undefined
          : "is not a PEM/OpenSSH private key (expected '-----BEGIN ... PRIVATE KEY-----' ... '-----END ...')",
    },
    redisPassword: {
      what: "the Redis password on mello (the worker's queue)",
      source: "< redis-password.txt",
      check: (v) => (v.trim().length >= 12 ? undefined : "is shorter than 12 characters"),
    },
    tailscaleAuthKey: {
      what: "a Tailscale auth key for `tailscale up --authkey`",
      source: "< tailscale-authkey.txt",
      check: (v) => (v.trim().startsWith("tskey-") ? undefined : "does not look like a Tailscale auth key (tskey-...)"),
    },
    r2AccessKeyId: {
      what: "the R2 S3 access key id (backups.mode=existing)",
      source: "< r2-access-key-id.txt",
      check: (v) => (/^[0-9a-f]{32}$/.test(v.trim()) ? undefined : "is not a 32-character hex R2 access key id"),
    },
    r2SecretAccessKey: {
      what: "the R2 S3 secret access key (backups.mode=existing)",
      source: "< r2-secret-access-key.txt",
      check: (v) => (/^[0-9a-f]{64}$/.test(v.trim()) ? undefined : "is not a 64-character hex R2 secret access key"),
    },
    // Serverless workers (inference = serverless): each becomes a Verda secret the deployments reference by name.
    hfToken: {
      what: "the Hugging Face token of the serverless workers (a Verda secret, never plain env)",
      source: "< hf-token.txt",
      check: (v) => (v.trim().length >= 8 ? undefined : "is shorter than 8 characters"),
    },
    registryToken: {
      what: "the access token of serverless.registry (pulls the private worker image)",
      source: "< registry-token.txt",
      check: (v) => (v.trim().length >= 8 ? undefined : "is shorter than 8 characters"),
    },
  };
}

/** Names that mark a value as a secret wherever it appears (any namespace, any nesting level). */
export function looksLikeSecretName(name: string): boolean {
  // Names, ids and paths *about* a secret (tokenName, tokenPermissionGroupIds, keyFile) are not secrets.
  if (/(name|names|ids|file|path|dir)$/i.test(name)) return false;
  return /(secret|password|passwd|token|private.?key|auth.?key|api.?key|credential)/i.test(name);
}

/** Values that are secrets whatever their key is called. */
export function looksLikeSecretValue(value: string): boolean {
  return /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(value) || /\btskey-[A-Za-z0-9-]{8,}/.test(value);
}

/** Dotted paths of secret-looking fields inside a plaintext object value. */
export function secretLookingPaths(value: unknown, prefix = ""): string[] {
  if (value === null || typeof value !== "object") {
    return typeof value === "string" && looksLikeSecretValue(value) ? [prefix] : [];
  }
  const found: string[] = [];
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (looksLikeSecretName(k) && v !== "" && v !== null && v !== undefined) found.push(path);
    else found.push(...secretLookingPaths(v, path));
  }
  return found;
}

/** Carries a secret through validation without ever printing it. */
export class SecretValue {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return "[secret]";
  }
  toJSON(): string {
    return "[secret]";
  }
}
