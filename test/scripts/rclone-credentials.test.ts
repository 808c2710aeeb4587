// rclone's R2 credentials reach rclone alone. A backup runs against a real S3 endpoint on loopback with
// wrappers early on PATH for the everyday tools the scripts call (sha256sum, jq, find, …): each wrapper
// records its environment, then runs the real tool. The backup must still succeed, rclone must still get
// its keys, and no other child may see the secret (or any RCLONE_CONFIG_R2_* key).
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { r2Secrets, run, tmp, useS3, write } from "./helpers";

const s3 = useS3();
const SPIED = ["sha256sum", "openssl", "md5sum", "perl", "curl", "jq", "find", "sort", "awk", "stat", "mktemp", "cat", "date", "tail", "head", "du", "wc"];

/** A PATH directory of wrappers that append their environment to DIR/<tool>.env and exec the real tool. */
function spyingPath(root: string, dumps: string): string {
  const dir = join(root, "spy-bin");
  for (const tool of SPIED) {
    const real = execFileSync("bash", ["-c", `command -v ${tool}`], { encoding: "utf8" }).trim();
    write(join(dir, tool), `#!/bin/bash\n/usr/bin/env -0 >>"${dumps}/${tool}.$$.env"\nexec ${real} "$@"\n`, 0o755);
  }
  return dir;
}

/** rclone itself, recorded the same way (the control: its keys must still reach it). */
function spyingRclone(root: string, dumps: string): string {
  const real = execFileSync("bash", ["-c", "command -v rclone"], { encoding: "utf8" }).trim();
  const wrapper = join(root, "rclone-spy");
  write(wrapper, `#!/bin/bash\n/usr/bin/env -0 >>"${dumps}/rclone.$$.env"\nexec ${real} "$@"\n`, 0o755);
  return wrapper;
}

describe("rclone credentials", () => {
  it("backup-to-r2 passes the R2 keys to rclone alone, not to sha256sum, jq, find or any other child", async () => {
    const root = tmp("rclone-creds");
    const dumps = tmp("rclone-creds-env");
    const sfs = join(root, "mnt/sfs");
    write(join(sfs, "models/checkpoints/a.safetensors"), randomBytes(64 * 1024));
    write(join(sfs, "cache/backups/verda-worker/latest"), "2026-01-01T000000Z\n");
    write(join(sfs, "worker-image.tar.gz"), randomBytes(4096));
    const path = `${spyingPath(root, dumps)}:${process.env.PATH}`;

    const result = await run("backup-to-r2.sh", ["--r2-endpoint", s3.endpoint], {
      env: { COMFYUME_ROOT: root, RCLONE_RETRIES: "1", PATH: path, RCLONE_CMD: spyingRclone(root, dumps) },
      input: r2Secrets(s3),
    });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/verified r2:comfyume-model-vault-backups\/models\/manifests\//);

    const dumped = readdirSync(dumps);
    const envOf = (file: string) => readFileSync(join(dumps, file), "utf8").split("\0");
    const rcloneRuns = dumped.filter((f) => f.startsWith("rclone."));
    const others = dumped.filter((f) => !f.startsWith("rclone."));
    // The spies did watch: rclone and the hashing/parsing tools all ran.
    expect(rcloneRuns.length).toBeGreaterThan(0);
    // (the SHA-256: sha256sum for files under 1 MiB, openssl above: hash_file)
    for (const tool of ["sha256sum", "md5sum", "jq", "find"]) expect(others.some((f) => f.startsWith(`${tool}.`)), tool).toBe(true);
    for (const file of rcloneRuns) expect(envOf(file), file).toContain(`RCLONE_CONFIG_R2_SECRET_ACCESS_KEY=${s3.secret}`);

    const leaks = others.flatMap((file) =>
      envOf(file)
        .filter((entry) => entry.includes(s3.secret) || entry.startsWith("RCLONE_CONFIG_R2_"))
        .map((entry) => `${file.split(".")[0]}: ${entry.split("=")[0]}`),
    );
    expect([...new Set(leaks)]).toEqual([]);
  }, 120_000);
});
