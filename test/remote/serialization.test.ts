// The providers must survive Pulumi's closure serialization: ssh2 by package name, no captured secrets.
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { RemoteCommand, remoteCommandProvider } from "../../infra/remote/command";
import { RemoteFiles, remoteFilesProvider } from "../../infra/remote/copy";
import { clientKey, privateKeyBody } from "./fixtures";

describe("serialization", () => {
  it.each([
    ["RemoteCommand", remoteCommandProvider],
    ["RemoteFiles", remoteFilesProvider],
  ])("%s provider serializes with require(\"ssh2\") and no key material", async (_name, provider) => {
    // Touch the key so it exists in this process: serialization must still not pick it up.
    expect(clientKey.privateKey).toContain("PRIVATE KEY");
    const serialized = await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true });
    expect(serialized.text).toContain('require("ssh2")');
    expect(serialized.text).not.toMatch(/require\("ssh2\/lib/);
    expect(serialized.text).not.toContain("PRIVATE KEY");
    expect(serialized.text).not.toContain(privateKeyBody().slice(0, 40));
    expect(serialized.containsSecrets).toBe(false);
  }, 30_000);

  it("resource classes expose the dynamic type tokens", () => {
    // Constructing a resource needs an engine; check the declared shapes instead.
    expect(RemoteCommand.name).toBe("RemoteCommand");
    expect(RemoteFiles.name).toBe("RemoteFiles");
  });
});
