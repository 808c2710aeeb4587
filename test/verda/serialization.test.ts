// Pulumi serializes each dynamic provider into state; it must serialize cleanly and carry no secret.
import * as pulumi from "@pulumi/pulumi";
import { afterEach, describe, expect, it } from "vitest";
import {
  containerDeploymentProvider,
  deploymentScalingProvider,
  fileSecretProvider,
  instanceProvider,
  registryCredentialsProvider,
  secretProvider,
  sshKeyProvider,
  startupScriptProvider,
  volumeProvider,
} from "../../infra/providers";
import { verdaRuntime } from "../../infra/providers/runtime";

const SECRET = "sim-secret-should-never-serialize-5b1f";

describe("provider serialization", () => {
  afterEach(() => {
    delete process.env.VERDA_CLIENT_SECRET;
    verdaRuntime().config = {};
  });

  const providers = { instanceProvider, volumeProvider, sshKeyProvider, startupScriptProvider, containerDeploymentProvider, deploymentScalingProvider, secretProvider, fileSecretProvider, registryCredentialsProvider };
  for (const [name, provider] of Object.entries(providers)) {
    it(`${name} serializes without secrets`, async () => {
      process.env.VERDA_CLIENT_SECRET = SECRET;
      verdaRuntime().config = { clientSecret: SECRET };
      const serialized = await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: false });
      expect(serialized.text.length).toBeGreaterThan(1000);
      expect(serialized.text).not.toContain(SECRET);
      expect(serialized.containsSecrets).toBe(false);
      // Third-party modules must not be captured by deep path (pulumi/pulumi#18976).
      expect(serialized.text).not.toMatch(/require\("@pulumi\/pulumi[^"]*"\)/);
    });
  }
});
