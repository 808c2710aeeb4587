// RemoteCommand and RemoteFiles record the provider version: state from older code (another version or none)
// diffs as an in-place change, and the update runs no command and uploads nothing (it only lets the engine store
// the current provider code in state, so a later delete runs the current code).
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type RemoteCommandInputs, type RemoteCommandOutputs, remoteCommandProvider } from "../../infra/remote/command";
import { type RemoteFilesInputs, type RemoteFilesOutputs, remoteFilesProvider } from "../../infra/remote/copy";
import { PROVIDER_VERSION } from "../../infra/providers/version";
import type { SshHost } from "../support/ssh-host";
import { connectionTo, startHost } from "./fixtures";

let host: SshHost;
beforeAll(async () => {
  host = await startHost();
});
afterAll(() => host.close());
beforeEach(() => {
  host.execLog.length = 0;
});

/** The same outputs as written by older code: without a version, and with another one. */
function olderStates<T extends { providerVersion?: string }>(outs: T): T[] {
  const { providerVersion: _dropped, ...unversioned } = outs;
  return [unversioned as T, { ...outs, providerVersion: "0.0.0-old" }];
}

describe("a new provider version runs nothing remotely", () => {
  it("RemoteCommand: update, not replace, and no command runs", async () => {
    const news: RemoteCommandInputs = { connection: connectionTo(host), create: "echo made", delete: "echo gone", providerVersion: PROVIDER_VERSION };
    const { id, outs } = await remoteCommandProvider.create(news);
    expect(outs).toMatchObject({ providerVersion: PROVIDER_VERSION, stdout: "made" });
    expect(await remoteCommandProvider.diff!(id, outs as RemoteCommandOutputs, news)).toEqual({ changes: false, replaces: [] });
    for (const olds of olderStates(outs as RemoteCommandOutputs)) {
      expect(await remoteCommandProvider.diff!(id, olds, news)).toEqual({ changes: true, replaces: [] });
      host.execLog.length = 0;
      const updated = await remoteCommandProvider.update!(id, olds, news);
      expect(host.execLog).toEqual([]);
      expect(updated.outs).toMatchObject({ providerVersion: PROVIDER_VERSION, stdout: "made", presentedHostKey: host.hostKey });
    }
  });

  it("RemoteFiles: update, not replace, and nothing is uploaded", async () => {
    // The upload's command runs on this machine (the ssh2 host): a path under the host's root.
    const target = path.join(host.root, "opt/version/script.sh");
    const news: RemoteFilesInputs = { connection: connectionTo(host), files: { [target]: "echo v1\n" }, providerVersion: PROVIDER_VERSION };
    const { id, outs } = await remoteFilesProvider.create(news);
    expect(outs).toMatchObject({ providerVersion: PROVIDER_VERSION });
    const onHost = target;
    // Marks the uploaded file: an upload during the update would overwrite the mark.
    writeFileSync(onHost, "marked\n");
    for (const olds of olderStates(outs as RemoteFilesOutputs)) {
      expect(await remoteFilesProvider.diff!(id, olds, news)).toEqual({ changes: true, replaces: [] });
      const updated = await remoteFilesProvider.update!(id, olds, news);
      expect(readFileSync(onHost, "utf8")).toBe("marked\n");
      expect(updated.outs).toMatchObject({ providerVersion: PROVIDER_VERSION, fileHashes: (outs as RemoteFilesOutputs).fileHashes });
    }
  });
});
