// The scripts as the Pulumi hooks run them: a real OpenSSH client executes the script on an
// SSH server on loopback (ssh2's server, behaving like sshd for a non-pty exec channel: the
// command runs with the server's environment, stdin/stdout/stderr are the channel, and when
// the connection drops the pipes close). Secrets travel on stdin only.
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { Server } from "ssh2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateKeyPair } from "../support/ssh-host";
import { HOST, type S3, cleanupTmp, makeInstanceRoot, run, startS3, tmp, write } from "./helpers";

interface Exec {
  command: string;
  exit: Promise<number>;
}

let s3: S3;
let server: Server;
let port = 0;
let serverEnv: Record<string, string> = {};
const execs: Exec[] = [];

beforeAll(async () => {
  s3 = await startS3();
  const hostKey = generateKeyPair().privateKey;
  server = new Server({ hostKeys: [hostKey] }, (client) => {
    const children: ChildProcess[] = [];
    client.on("authentication", (ctx) => ctx.accept());
    client.on("ready", () => {
      client.on("session", (accept) => {
        const session = accept();
        session.on("exec", (acceptExec, _reject, info) => {
          const stream = acceptExec();
          const child = spawn("bash", ["-c", info.command], { env: serverEnv, stdio: ["pipe", "pipe", "pipe"] });
          children.push(child);
          stream.pipe(child.stdin!);
          child.stdout!.pipe(stream, { end: false });
          child.stderr!.pipe(stream.stderr, { end: false });
          execs.push({
            command: info.command,
            exit: new Promise((res) =>
              child.on("close", (code, signal) => {
                res(code ?? (signal ? 128 : -1));
                try {
                  stream.exit(code ?? 1);
                  stream.end();
                } catch {
                  /* channel already gone */
                }
              }),
            ),
          });
        });
      });
    });
    // Connection dropped: like sshd, close the command's pipes (no signal is sent).
    client.on("close", () => {
      for (const c of children) {
        c.stdout?.destroy();
        c.stderr?.destroy();
        c.stdin?.destroy();
      }
    });
    client.on("error", () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  cleanupTmp();
  server?.close();
  await s3?.stop();
});

function ssh(command: string, input: string): { child: ChildProcess; done: Promise<{ code: number; stderr: string }> } {
  const child = spawn(
    "ssh",
    ["-p", String(port), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "root@127.0.0.1", command],
    { stdio: ["pipe", "pipe", "pipe"] },
  );
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  child.stdout!.on("data", () => undefined);
  child.stdin!.end(input);
  return { child, done: new Promise((res) => child.on("close", (code) => res({ code: code ?? -1, stderr }))) };
}

describe("over SSH", () => {
  it("runs backup-mello with the R2 keys on stdin; the remote command line carries no secret", async () => {
    const root = tmp("sshmello");
    write(join(root, "home/dev/comfyume/data/user_data/user001/a.json"), "{}");
    write(join(root, "home/dev/comfyume/data/outputs/user001/o.png"), "png");
    write(join(root, "home/dev/comfyume/data/inputs/i.png"), "in");
    serverEnv = { PATH: process.env.PATH ?? "", HOME: "/root", COMFYUME_ROOT: root, RCLONE_RETRIES: "1" };
    const n = execs.length;
    const { done } = ssh(`bash ${HOST}/backup-mello.sh --r2-endpoint ${s3.endpoint}`, `R2_ACCESS_KEY_ID=${s3.keyId}\nR2_SECRET_ACCESS_KEY=${s3.secret}\n`);
    const r = await done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/verified r2:comfyume-user-files-backups\/mello\/inputs\/manifests\//);
    expect(execs[n].command).not.toContain(s3.secret);
    expect(readFileSync(join(root, "var/log/comfyume/backup-mello.log"), "utf8")).not.toContain(s3.secret);
  });

  it("a connection dropped mid-backup ends the remote run non-zero with a logged reason; the last backup still verifies", async () => {
    const root = tmp("sshdrop");
    const sfs = join(root, "mnt/sfs");
    write(join(sfs, "cache/backups/verda-worker/2026-01-01T000000Z/config.tar.gz"), Buffer.alloc(5000, 1));
    const secrets = `R2_ACCESS_KEY_ID=${s3.keyId}\nR2_SECRET_ACCESS_KEY=${s3.secret}\n`;
    const env = { COMFYUME_ROOT: root, RCLONE_RETRIES: "1" };
    const first = await run("backup-to-r2.sh", ["--r2-endpoint", s3.endpoint, "--only", "cache"], { env, input: secrets });
    expect(first.code, first.stderr).toBe(0);

    writeFileSync(join(sfs, "cache/new.bin"), Buffer.alloc(50_000, 2));
    const slow = join(tmp("slow"), "rclone-slow");
    write(slow, `#!/usr/bin/env bash\n[[ $* == *" copy "* ]] && sleep 3\nexec rclone "$@"\n`, 0o755);
    serverEnv = { PATH: process.env.PATH ?? "", HOME: "/root", ...env, RCLONE_CMD: slow };
    await new Promise((r) => setTimeout(r, 1100));
    const n = execs.length;
    const { child, done } = ssh(`bash ${HOST}/backup-to-r2.sh --r2-endpoint ${s3.endpoint} --only cache`, secrets);
    setTimeout(() => child.kill("SIGKILL"), 1500);
    await done;
    await new Promise((r) => setTimeout(r, 100));
    const remoteExit = await execs[n].exit;
    expect(remoteExit).not.toBe(0);
    expect(readFileSync(join(root, "var/log/comfyume/backup-to-r2.log"), "utf8")).toMatch(/interrupted by SIGPIPE/);

    const v = await run("backup-to-r2.sh", ["--r2-endpoint", s3.endpoint, "--only", "cache", "--verify-only"], { env, input: secrets });
    expect(v.code, v.stderr).toBe(0);
    await new Promise((r) => setTimeout(r, 1100));
    const again = await run("backup-to-r2.sh", ["--r2-endpoint", s3.endpoint, "--only", "cache"], { env, input: secrets });
    expect(again.code, again.stderr).toBe(0);
  });

  it("backup-instance cut off mid-run over SSH records the failure in its status file", async () => {
    const root = tmp("sshinst");
    makeInstanceRoot(root, "100.64.1.2");
    const sfs = join(root, "mnt/sfs");
    write(join(sfs, ".keep"), "");
    const slowBin = tmp("slowtar");
    write(join(slowBin, "tar"), `#!/usr/bin/env bash\nsleep 1\nexec /usr/bin/tar "$@"\n`, 0o755);
    serverEnv = { PATH: `${slowBin}:${process.env.PATH ?? ""}`, HOME: "/root", COMFYUME_ROOT: root };
    const n = execs.length;
    const { child, done } = ssh(`bash ${HOST}/backup-instance.sh --sfs ${sfs} --min-free-mb 1`, "");
    setTimeout(() => child.kill("SIGKILL"), 1500);
    await done;
    expect(await execs[n].exit).not.toBe(0);
    const status = readFileSync(join(root, "var/lib/comfyume/backup-instance.status"), "utf8");
    expect(status).toMatch(/^last_result=failed$/m);
    expect(readFileSync(join(root, "var/log/comfyume/backup-instance.log"), "utf8")).toMatch(/interrupted by SIGPIPE/);
  });
});
