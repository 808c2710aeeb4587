// RemoteFiles provider: one-archive upload to the loopback host (its commands run on this machine, so the remote
// paths are under the host's temporary root), content-hash diffs, partial re-upload.
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UNKNOWN } from "../../infra/remote/connection";
import { type RemoteFilesInputs, type RemoteFilesOutputs, remoteFilesProvider as provider, sha256Hex } from "../../infra/remote/copy";
import type { SshHost } from "../support/ssh-host";
import { connectionTo, startHost } from "./fixtures";

let host: SshHost;
beforeAll(async () => {
  host = await startHost();
});
afterAll(() => host.close());

/** A remote path under the host's root: the upload's command runs on this machine. */
const on = (remote: string) => path.join(host.root, remote);

function inputs(files: Record<string, string>, extra: Partial<RemoteFilesInputs> = {}): RemoteFilesInputs {
  return { connection: connectionTo(host), files, ...extra };
}

describe("RemoteFiles", () => {
  it("uploads files into new parent directories with the requested mode and keeps only hashes in state", async () => {
    const files = { [on("/opt/comfyume/bin/restore.sh")]: "#!/bin/bash\necho restore\n", [on("/etc/comfyume/empty.conf")]: "" };
    const { id, outs } = await provider.create(inputs(files, { mode: 0o755 }));
    expect(id).toMatch(/^[0-9a-f]{16}$/);
    expect(readFileSync(on("/opt/comfyume/bin/restore.sh"), "utf8")).toBe(files[on("/opt/comfyume/bin/restore.sh")]);
    expect(readFileSync(on("/etc/comfyume/empty.conf"), "utf8")).toBe("");
    expect(statSync(on("/opt/comfyume/bin/restore.sh")).mode & 0o777).toBe(0o755);
    expect(outs).toMatchObject({
      fileHashes: { [on("/etc/comfyume/empty.conf")]: sha256Hex(""), [on("/opt/comfyume/bin/restore.sh")]: sha256Hex(files[on("/opt/comfyume/bin/restore.sh")]) },
      presentedHostKey: host.hostKey,
      mode: 0o755,
    });
    expect(JSON.stringify(outs)).not.toContain("echo restore");
    expect(outs).not.toHaveProperty("files");
  });

  it("diffs by content hash and re-uploads only changed files; removed paths stay on the host", async () => {
    const first = { [on("/srv/a.txt")]: "alpha v1\n", [on("/srv/b.txt")]: "beta v1\n", [on("/srv/gone.txt")]: "old\n" };
    const { id, outs } = await provider.create(inputs(first));
    const state = outs as RemoteFilesOutputs;
    // Tamper with a.txt on the host: an update that does not touch a.txt must leave it alone.
    writeFileSync(on("/srv/a.txt"), "edited on the host\n");

    expect(await provider.diff!(id, state, inputs({ [on("/srv/a.txt")]: "alpha v1\n", [on("/srv/b.txt")]: "beta v1\n", [on("/srv/gone.txt")]: "old\n" })))
      .toEqual({ changes: false, replaces: [] });
    const second = { [on("/srv/a.txt")]: "alpha v1\n", [on("/srv/b.txt")]: "beta v2\n" };
    expect(await provider.diff!(id, state, inputs(second))).toEqual({ changes: true, replaces: [] });
    expect(await provider.diff!(id, state, inputs(first, { triggers: ["rebuild"] }))).toEqual({ changes: true, replaces: ["triggers"] });
    expect(await provider.diff!(id, state, inputs({ ...first, [on("/srv/b.txt")]: UNKNOWN }))).toEqual({ changes: true, replaces: [] });

    const { outs: updated } = await provider.update!(id, state, inputs(second));
    expect(readFileSync(on("/srv/b.txt"), "utf8")).toBe("beta v2\n");
    expect(readFileSync(on("/srv/a.txt"), "utf8")).toBe("edited on the host\n");
    expect(Object.keys((updated as RemoteFilesOutputs).fileHashes)).toEqual([on("/srv/a.txt"), on("/srv/b.txt")]);
    expect(existsSync(on("/srv/gone.txt"))).toBe(true);

    // A mode change rewrites everything.
    await provider.update!(id, updated as RemoteFilesOutputs, inputs(second, { mode: 0o600 }));
    expect(readFileSync(on("/srv/a.txt"), "utf8")).toBe("alpha v1\n");
    expect(statSync(on("/srv/b.txt")).mode & 0o777).toBe(0o600);

    await provider.delete!(id, updated as RemoteFilesOutputs);
    expect(existsSync(on("/srv/b.txt"))).toBe(true);
  });

  it("rejects relative or dot-segment paths at check time", async () => {
    const result = await provider.check!({} as RemoteFilesInputs, inputs({ "relative.txt": "x", "/a/../b": "y", "/ok": 5 as never }));
    expect(result.failures!.map((failure) => failure.property)).toEqual(['files["relative.txt"]', 'files["/a/../b"]', 'files["/ok"]']);
  });
});
