// comfyume:inference and comfyume:serverless: defaults, the serverless day without instance secrets, and
// every bad setting named with its key and the fix before anything is declared.
import { describe, expect, it } from "vitest";
import { formatIssues, loadConfig, validateConfig, type ConfigIssue, type RawConfig } from "../../infra/config";
import { DAY_SECRET_KEYS, SECRETS, dayValues, monthValues, raw } from "../support/fixtures";

const SSH_KEY = SECRETS.sshPrivateKey;

const DEPLOYMENTS = [{ gpu: "H200", spot: true }, { gpu: "H200", spot: false, minReplicas: 0 }];
/** The app on mello: no host mounts the SFS, so these stacks say outright that <sfs>/outputs is not backed up. */
const SERVERLESS = { image: "ghcr.io/ahelme/comfyume-worker:v1", deployments: DEPLOYMENTS, outputsBackup: "none" };
/** The fixtures' values without the instance path's secrets (a serverless stack has none of them). */
function withoutInstanceSecrets(values: Record<string, unknown>): Record<string, unknown> {
  const out = { ...values };
  for (const key of ["comfyume:sshPrivateKey", "comfyume:redisPassword", "comfyume:tailscaleAuthKey", "comfyume:restore"]) delete out[key];
  return out;
}
const month = (patch: Record<string, unknown> = {}, secrets = ["verda:clientSecret"]) =>
  raw("testing-month", { ...withoutInstanceSecrets(monthValues("testing", false)), "comfyume:inference": "serverless", "comfyume:serverless": SERVERLESS, ...patch }, secrets);
const day = (patch: Record<string, unknown> = {}, secrets = ["verda:clientSecret"]) =>
  raw("testing-day", { ...withoutInstanceSecrets(dayValues("testing")), "comfyume:inference": "serverless", "comfyume:serverless": SERVERLESS, ...patch }, secrets);

function issuesOf(r: RawConfig): ConfigIssue[] {
  const result = validateConfig(r);
  if (result.ok) throw new Error("expected the configuration to be rejected");
  return result.issues;
}

describe("comfyume:inference and comfyume:serverless", () => {
  it("defaults to instance; the serverless block takes its defaults and a name prefix per environment", () => {
    const plain = loadConfig(raw("testing-day", dayValues("testing"), DAY_SECRET_KEYS));
    expect(plain.inference).toBe("instance");
    const cfg = loadConfig(month());
    expect(cfg.inference).toBe("serverless");
    expect(cfg.serverless).toMatchObject({
      namePrefix: "comfyume-testing-worker",
      port: 8188,
      prewarmMinutes: 0,
      scaling: { minReplicas: 1, maxReplicas: 10, scaleUpDelaySeconds: 0, scaleDownDelaySeconds: 300, queueLoadThreshold: 2, concurrentRequestsPerReplica: 1, queueMessageTtlSeconds: 36000 },
      deployments: [{ gpu: "H200", spot: true, gpus: 1 }, { gpu: "H200", spot: false, gpus: 1, minReplicas: 0 }],
    });
  });

  it("a serverless day needs no SSH key, Redis password or Tailscale key (there is no instance)", () => {
    const result = validateConfig(day());
    expect(result.ok ? [] : formatIssues("testing-day", result.issues)).toEqual([]);
  });

  it("names the key and the fix for each bad setting, all at once", () => {
    const issues = issuesOf(
      month({
        "comfyume:inference": "lambda",
        "comfyume:serverless": {
          deployments: [{ gpu: "H200", spot: true }, { gpu: "H200", spot: true }, { gpu: "B300", minReplicas: 5, maxReplicas: 2 }],
          scaling: { minReplicas: 4, maxReplicas: 3 },
          prewarmMinutes: -5,
        },
      }),
    );
    const byKey = Object.fromEntries(issues.map((i) => [i.key, i]));
    expect(byKey["comfyume:inference"]?.problem).toBe("'lambda' is not an inference mode; use instance or serverless");
    expect(byKey["comfyume:inference"]?.fix).toContain("scripts/pulumi config set 'comfyume:inference' serverless --stack testing-month");
    expect(byKey["comfyume:serverless.scaling.minReplicas"]?.problem).toBe("minReplicas must not exceed maxReplicas");
    expect(byKey["comfyume:serverless.prewarmMinutes"]?.problem).toBe("must be at least 0");

    // With the schema satisfied, the cross-setting rules speak (image, duplicates, per-deployment min > max).
    const rules = issuesOf(month({ "comfyume:serverless": { outputsBackup: "none", deployments: [{ gpu: "H200", spot: true }, { gpu: "h200", spot: true }, { gpu: "B300", minReplicas: 5, maxReplicas: 2 }] } }));
    expect(rules.map((i) => `${i.key}: ${i.problem}`)).toEqual([
      "comfyume:serverless.image: is missing: the worker image the month's deployments run (inference = serverless)",
      "comfyume:serverless.deployments[1]: repeats h200 spot: one deployment per GPU × pricing",
      "comfyume:serverless.deployments[2].minReplicas: (5) exceeds its maxReplicas (2)",
    ]);
    expect(rules[0]!.fix).toContain("serverless.image");
  });

  it("a private registry needs its token as a secret; the HF token is refused in plaintext", () => {
    const needsToken = issuesOf(month({ "comfyume:serverless": { ...SERVERLESS, registry: { type: "ghcr", username: "ahelme" } } }));
    expect(needsToken.map((i) => i.key)).toEqual(["comfyume:registryToken"]);
    expect(needsToken[0]!.fix).toContain("config set --secret");
    const plaintext = issuesOf(month({ "comfyume:hfToken": "hf_plaintextToken123" }));
    expect(plaintext.map((i) => `${i.key}: ${i.problem}`)).toEqual(["comfyume:hfToken: is a secret but is set in plaintext"]);
  });

  it("refuses serverless with the app on mello before anything is declared: no host would back up <sfs>/outputs", () => {
    const unbacked = { image: "ghcr.io/ahelme/comfyume-worker:v1", deployments: DEPLOYMENTS };
    for (const r of [month({ "comfyume:serverless": unbacked }), day({ "comfyume:serverless": unbacked })]) {
      const issues = issuesOf(r);
      expect(issues.map((i) => i.key)).toEqual(["comfyume:app.host"]);
      expect(issues[0]!.problem).toMatch(/'mello' with inference = serverless: no host mounts the SFS.*outputs.*never reach R2/);
      expect(issues[0]!.fix).toContain("'comfyume:app.host' verda");
      expect(issues[0]!.fix).toContain("'comfyume:serverless.outputsBackup' none");
    }
    // The app host mounts the SFS: the day's destroy backs the outputs up from there (the day then needs the SSH key).
    const onVerda = { "comfyume:serverless": unbacked, "comfyume:app": { host: "verda" } };
    expect(issuesOf(day(onVerda)).map((i) => i.key)).toEqual(["comfyume:sshPrivateKey"]);
    expect(loadConfig(day({ ...onVerda, "comfyume:sshPrivateKey": SSH_KEY }, ["verda:clientSecret", "comfyume:sshPrivateKey"])).serverless.outputsBackup).toBe("app-host");
    // Saying so outright is accepted (and recorded).
    expect(loadConfig(day()).serverless.outputsBackup).toBe("none");
  });
});
