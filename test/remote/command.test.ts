// RemoteCommand provider lifecycle against a real loopback SSH server (provider methods called directly,
// the way the dynamic-provider host calls them).
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  REMOTE_PATH, type RemoteCommandInputs, type RemoteCommandOutputs, remoteCommandProvider as provider,
} from "../../infra/remote/command";
import { UNKNOWN } from "../../infra/remote/connection";
import type { SshHost } from "../support/ssh-host";
import { connectionTo, privateKeyBody, startHost } from "./fixtures";

let host: SshHost;
beforeAll(async () => {
  host = await startHost();
});
afterAll(() => host.close());
beforeEach(() => {
  host.execLog.length = 0;
});

const SECRET = "s3cr3t-Token-value-42";

/** The commands the host received, without the `export PATH=…; ` every remote command starts with. */
function commandsRun(on: SshHost = host): string[] {
  const prefix = `export PATH=${REMOTE_PATH}; `;
  return on.execLog.map((record) => {
    expect(record.command.startsWith(prefix)).toBe(true);
    return record.command.slice(prefix.length);
  });
}

function inputs(extra: Partial<RemoteCommandInputs> = {}): RemoteCommandInputs {
  return { connection: connectionTo(host), ...extra };
}

async function createOk(extra: Partial<RemoteCommandInputs>): Promise<{ id: string; outs: RemoteCommandOutputs }> {
  const { id, outs } = await provider.create(inputs(extra));
  return { id, outs: outs as RemoteCommandOutputs };
}

async function failureOf(work: Promise<unknown>): Promise<string> {
  const error = await work.then(() => undefined, (caught: unknown) => caught as Error);
  expect(error, "expected the operation to fail").toBeInstanceOf(Error);
  return (error as Error).message;
}

describe("preview (check/diff) runs nothing on the host", () => {
  it("validates inputs without connecting", async () => {
    const bad = await provider.check!({} as RemoteCommandInputs, {
      connection: { host: "", port: 70000, hostKey: "ssh-ed25519 not*base64", password: "pw" } as never,
      logging: "loud" as never,
      timeoutSeconds: 0,
    });
    const properties = bad.failures!.map((failure) => failure.property).sort();
    expect(properties).toEqual([
      "connection.host", "connection.hostKey", "connection.password", "connection.port", "logging", "timeoutSeconds",
    ]);
    const good = await provider.check!({} as RemoteCommandInputs, inputs({ create: "true" }));
    expect(good.failures).toEqual([]);
    expect(host.execLog).toEqual([]);
  });

  it("refuses `environment` (and other @pulumi/command inputs it cannot honour) naming the setting and the fix", async () => {
    const checked = await provider.check!({} as RemoteCommandInputs, {
      ...inputs({ create: "true" }), environment: { MODE: "restore" }, addPreviousOutputInEnv: true,
    } as never);
    expect(checked.failures).toEqual([
      { property: "environment", reason: expect.stringMatching(/^not supported by this provider: .*`VAR=value command` prefix.*secrets on `stdin`/) },
      { property: "addPreviousOutputInEnv", reason: expect.stringMatching(/^not supported by this provider/) },
    ]);
    const engineAdded = await provider.check!({} as RemoteCommandInputs, { ...inputs({ create: "true" }), __provider: "code" } as never);
    expect(engineAdded.failures).toEqual([]);
    expect(host.execLog).toEqual([]);
  });

  it("accepts unknown values during preview and reports them as changes", async () => {
    const checked = await provider.check!({} as RemoteCommandInputs, { connection: { host: UNKNOWN, port: UNKNOWN as never }, create: UNKNOWN });
    expect(checked.failures).toEqual([]);
    const olds = { ...inputs({ create: "echo a", triggers: [1] }), stdout: "", stderr: "", presentedHostKey: "" };
    expect(await provider.diff!("id", olds, { ...inputs({ create: UNKNOWN, triggers: [1] }) })).toEqual({ changes: true, replaces: [] });
    expect(await provider.diff!("id", olds, { ...inputs({ create: "echo a", triggers: [UNKNOWN] }) })).toEqual({ changes: true, replaces: ["triggers"] });
    expect(host.execLog).toEqual([]);
  });

  it("ignores __provider and outputs; triggers replace, other fields update", async () => {
    const olds = { ...inputs({ create: "echo a", triggers: ["v1"] }), stdout: "a", stderr: "", presentedHostKey: "k", __provider: "old code" };
    const same = { ...inputs({ create: "echo a", triggers: ["v1"] }), __provider: "new code" } as RemoteCommandInputs;
    expect(await provider.diff!("id", olds, same)).toEqual({ changes: false, replaces: [] });
    expect(await provider.diff!("id", olds, { ...same, create: "echo b" })).toEqual({ changes: true, replaces: [] });
    expect(await provider.diff!("id", olds, { ...same, connection: { ...same.connection, host: "10.0.0.9" } })).toEqual({ changes: true, replaces: [] });
    expect(await provider.diff!("id", olds, { ...same, triggers: ["v2"] })).toEqual({ changes: true, replaces: ["triggers"] });
  });
});

describe("create / update / delete", () => {
  it("create runs the command and records trimmed output, a hex id and the presented host key", async () => {
    const { id, outs } = await createOk({ create: "echo hello; echo warn >&2; echo \"user=$USER\"" });
    expect(id).toMatch(/^[0-9a-f]{16}$/);
    expect(outs.stdout).toBe("hello\nuser=root");
    expect(outs.stderr).toBe("warn");
    expect(outs.presentedHostKey).toBe(host.hostKey);
    expect(host.execLog).toHaveLength(1);
  });

  it("create without a command connects to nothing", async () => {
    const { outs } = await createOk({ delete: "echo bye" });
    expect(outs).toMatchObject({ stdout: "", stderr: "", presentedHostKey: "" });
    expect(host.execLog).toEqual([]);
  });

  it("update runs `update` with the new inputs, or `create` again when there is no `update`", async () => {
    const { id, outs } = await createOk({ create: "echo create-$((1+1))" });
    expect(outs.stdout).toBe("create-2");
    const withUpdate = await provider.update!(id, outs, inputs({ create: "echo create-3", update: "echo update-ran" }));
    expect(withUpdate.outs!.stdout).toBe("update-ran");
    const rerun = await provider.update!(id, outs, inputs({ create: "echo create-again" }));
    expect(rerun.outs!.stdout).toBe("create-again");
    expect(commandsRun()).toEqual(["echo create-$((1+1))", "echo update-ran", "echo create-again"]);
  });

  it("a new connection (e.g. a rebuilt server) is an update that runs on the new host", async () => {
    const { id, outs } = await createOk({ create: "echo on-first" });
    const rebuilt = await startHost();
    try {
      const moved = await provider.update!(id, outs, { ...inputs({ create: "echo on-first" }), connection: connectionTo(rebuilt) });
      expect(moved.outs).toMatchObject({ stdout: "on-first", presentedHostKey: rebuilt.hostKey });
      expect(commandsRun(rebuilt)).toEqual(["echo on-first"]);
    } finally {
      await rebuilt.close();
    }
  });

  it("editing only the delete script (or logging/timeout) re-runs nothing", async () => {
    const { id, outs } = await createOk({ create: "echo restored", delete: "echo backup-v1" });
    host.execLog.length = 0;
    const updated = await provider.update!(id, outs, inputs({ create: "echo restored", delete: "echo backup-v2", timeoutSeconds: 60 }));
    expect(host.execLog).toEqual([]);
    expect(updated.outs).toMatchObject({ delete: "echo backup-v2", timeoutSeconds: 60, stdout: "restored", presentedHostKey: host.hostKey });
  });

  it("delete runs the state's delete command with the state's stdin", async () => {
    const marker = path.join(host.root, "deleted.txt");
    const state = { ...inputs({ delete: `cat > ${marker}`, stdin: "from-state" }), stdout: "", stderr: "", presentedHostKey: "" };
    await provider.delete!("id", state);
    expect(readFileSync(marker, "utf8")).toBe("from-state");
  });

  it("a failing delete throws (so the engine keeps the resource) with exit code and stderr tail", async () => {
    const state = {
      ...inputs({ delete: "for i in $(seq 1 60); do echo line-$i >&2; done; exit 3" }), stdout: "", stderr: "", presentedHostKey: "",
    };
    const message = await failureOf(provider.delete!("id", state));
    expect(message).toMatch(/^remote delete command on 127\.0\.0\.1 exited with code 3/);
    expect(message).toContain("line-60");
    expect(message).not.toContain("line-20\n");
  });

  it("a delete that cannot reach the host fails (resource kept) and points to the rescue", async () => {
    const state = {
      connection: { ...connectionTo(host), port: 1, dialErrorLimit: 1 }, delete: "echo backup", stdout: "", stderr: "", presentedHostKey: "",
    };
    const message = await failureOf(provider.delete!("id", state));
    expect(message).toMatch(/^remote delete command on 127\.0\.0\.1: could not connect to root@127\.0\.0\.1:1 after 1 attempt\(s\): .*ECONNREFUSED/);
    expect(message).toContain("npm run rescue -- --stack <stack>");
    expect(message).not.toContain(privateKeyBody());
  });

  it("an update failure throws and leaves the old outputs to the engine", async () => {
    const { id, outs } = await createOk({ create: "echo ok" });
    const message = await failureOf(provider.update!(id, outs, inputs({ create: "echo broken >&2; exit 7" })));
    expect(message).toContain("exited with code 7");
    expect(message).toContain("broken");
  });
});

describe("secrets and logging", () => {
  it("stdin reaches the script but never the outputs or errors", async () => {
    const received = path.join(host.root, "received.env");
    const script = `cat > ${received}; echo "got $(wc -c < ${received}) bytes"; cat ${received}; cat ${received} >&2`;
    const { outs } = await createOk({ create: script, stdin: `API_TOKEN=${SECRET}\n` });
    expect(readFileSync(received, "utf8")).toBe(`API_TOKEN=${SECRET}\n`);
    expect(outs.stdout).toContain(`got ${`API_TOKEN=${SECRET}\n`.length} bytes`);
    const { stdin: _stdin, connection: _connection, ...visible } = outs;
    expect(JSON.stringify(visible)).not.toContain(SECRET);

    const message = await failureOf(provider.create(inputs({ create: "cat >&2; exit 1", stdin: SECRET })));
    expect(message).toContain("[redacted]");
    expect(message).not.toContain(SECRET);
    expect(message).not.toContain(privateKeyBody());
  });

  it('logging "none" empties the outputs; errors still carry the (redacted) stderr tail', async () => {
    const { outs } = await createOk({ create: "echo visible; echo also >&2", logging: "none" });
    expect(outs).toMatchObject({ stdout: "", stderr: "" });
    const message = await failureOf(provider.create(inputs({ create: "echo detail >&2; exit 4", logging: "none" })));
    expect(message).toBe("remote create command on 127.0.0.1 exited with code 4\n--- last lines of stderr ---\ndetail");
  });

  it('logging "stdout" keeps stdout only (stderr still explains failures)', async () => {
    const { outs } = await createOk({ create: "echo out; echo err >&2", logging: "stdout" });
    expect(outs).toMatchObject({ stdout: "out", stderr: "" });
  });
});
