// Every stacks/Pulumi.<stack>.yaml is valid YAML and passes validation once its secrets are set.
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { formatIssues, validateConfig } from "../../infra/config";
import { PHASES } from "../../infra/config/phase";
import { SECRETS } from "../support/fixtures";

const STACKS_DIR = path.resolve(__dirname, "../../stacks");

function stackConfig(stack: string): Record<string, unknown> {
  const doc = parse(fs.readFileSync(path.join(STACKS_DIR, `Pulumi.${stack}.yaml`), "utf8")) as { config?: Record<string, unknown> };
  return doc.config ?? {};
}

/** What `config set --secret` would add for each layer. */
const SECRETS_BY_STACK: Record<string, Record<string, string>> = {
  idle: {},
  "testing-month": { "comfyume:sshPrivateKey": SECRETS.sshPrivateKey },
  "workshop-month": { "comfyume:sshPrivateKey": SECRETS.sshPrivateKey },
  "testing-day": {
    "comfyume:sshPrivateKey": SECRETS.sshPrivateKey,
    "comfyume:redisPassword": SECRETS.redisPassword,
    "comfyume:tailscaleAuthKey": SECRETS.tailscaleAuthKey,
  },
};
SECRETS_BY_STACK["workshop-day"] = SECRETS_BY_STACK["testing-day"];

describe.each(PHASES.map((p) => [p]))("stacks/Pulumi.%s.yaml", (stack) => {
  it("names its own phase and validates with its secrets set", () => {
    const config = stackConfig(stack);
    expect(config["comfyume:phase"]).toBe(stack);
    const values: Record<string, string> = {};
    for (const [k, v] of Object.entries(config)) values[k] = typeof v === "string" ? v : JSON.stringify(v);
    Object.assign(values, SECRETS_BY_STACK[stack]);
    const result = validateConfig({
      stack,
      values,
      secretKeys: new Set(Object.keys(SECRETS_BY_STACK[stack])),
      env: { VERDA_CLIENT_ID: "id", VERDA_CLIENT_SECRET: "secret", HCLOUD_TOKEN: "t", CLOUDFLARE_API_TOKEN: "t" },
    });
    expect(result.ok ? "" : formatIssues(stack, result.issues)).toBe("");
  });

  it("holds no secret in plaintext", () => {
    const text = fs.readFileSync(path.join(STACKS_DIR, `Pulumi.${stack}.yaml`), "utf8");
    expect(text).not.toMatch(/PRIVATE KEY-----|tskey-/);
    for (const key of Object.keys(stackConfig(stack))) expect(key).not.toMatch(/secret|password|token|privatekey|authkey/i);
  });
});
