// The cold setup's long builds run at the same time (scripts/setup/concurrent.sh, wired in setup.sh).
// The real setup.sh runs in a copy of the repository's setup scripts in which the builders
// (build-pulumi-from-go.sh, build-s3-server.sh, build-actionlint.sh, sim/image/build-image.sh) are stubs:
// no network, no Go, no root.
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";

const repo = resolve(__dirname, "../..");
const pulumiVersion = /^PULUMI_VERSION=(\S+)$/m.exec(readFileSync(join(repo, "scripts/setup/versions.sh"), "utf8"))![1];
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A stub builder: records its pid, waits until every name in `waitFor` has started (bounded), then runs `body`. */
function stub(root: string, name: string, waitFor: string[], body: string): string {
  const waits = waitFor
    .map((w) => `for _ in $(seq 100); do [ -f "${root}/started/${w}" ] && break; sleep 0.1; done
[ -f "${root}/started/${w}" ] || { echo "stub ${name}: ${w} never started alongside" >&2; exit 9; }`)
    .join("\n");
  return `#!/usr/bin/env bash
set -euo pipefail
echo $$ >"${root}/pids/${name}"
: >"${root}/started/${name}"
echo "stub ${name}: building (a stub)" >&2
${waits}
${body}
`;
}

interface Stubs {
  pulumi: string;
  s3: string;
  actionlint: string;
  image: string;
}

/** A copy of the setup scripts with stub builders, a stub node (22) and no way to reach get.pulumi.com. */
function makeRepo(stubs: (root: string) => Stubs): { root: string; copy: string; env: NodeJS.ProcessEnv } {
  const root = mkdtempSync(join(tmpdir(), "setup-concurrent-"));
  dirs.push(root);
  const copy = join(root, "repo");
  for (const d of ["pids", "started", "cache", "bin", "pulumi-home"]) mkdirSync(join(root, d));
  mkdirSync(join(copy, "scripts/setup"), { recursive: true });
  mkdirSync(join(copy, "scripts/lib"), { recursive: true });
  mkdirSync(join(copy, "sim/image"), { recursive: true });
  mkdirSync(join(copy, "node_modules"), { recursive: true });
  for (const f of ["setup.sh", "concurrent.sh", "versions.sh"]) cpSync(join(repo, "scripts/setup", f), join(copy, "scripts/setup", f));
  cpSync(join(repo, "scripts/lib"), join(copy, "scripts/lib"), { recursive: true });
  writeFileSync(join(copy, "scripts/setup/system-packages.sh"), "exit 0\n");
  const s = stubs(root);
  writeFileSync(join(copy, "scripts/setup/build-pulumi-from-go.sh"), s.pulumi);
  writeFileSync(join(copy, "scripts/setup/build-s3-server.sh"), s.s3);
  writeFileSync(join(copy, "scripts/setup/build-actionlint.sh"), s.actionlint);
  writeFileSync(join(copy, "sim/image/build-image.sh"), s.image);
  // npm ci is skipped: node_modules is stamped with this lockfile's hash.
  writeFileSync(join(copy, "package-lock.json"), "{}\n");
  writeFileSync(join(copy, "node_modules/.comfyume-lock-sha256"), createHash("sha256").update("{}\n").digest("hex") + "\n");
  const bin = join(root, "bin");
  writeFileSync(join(bin, "node"), '#!/bin/sh\ncase "$1" in -p) echo 22 ;; *) echo v22.0.0-stub ;; esac\n');
  writeFileSync(join(bin, "curl"), "#!/bin/sh\nexit 6\n");
  for (const f of ["node", "curl"]) chmodSync(join(bin, f), 0o755);
  const env = {
    PATH: `${bin}:/usr/sbin:/usr/bin:/sbin:/bin`,
    HOME: root,
    COMFYUME_CACHE: join(root, "cache"),
    PULUMI_HOME: join(root, "pulumi-home"),
  };
  return { root, copy, env };
}

/** The stub Pulumi build: leaves a `pulumi` that reports the pinned version, where setup.sh looks for it. */
const pulumiBuilt = (root: string) => `mkdir -p "${root}/cache/pulumi-v${pulumiVersion}/bin"
printf '#!/bin/sh\\necho v${pulumiVersion}\\n' >"${root}/cache/pulumi-v${pulumiVersion}/bin/pulumi"
chmod +x "${root}/cache/pulumi-v${pulumiVersion}/bin/pulumi"`;

function alive(pid: number): boolean {
  try {
    process.kill(-pid, 0); // the whole process group (setsid: the stub leads it)
    return true;
  } catch {
    return false;
  }
}

const pidOf = (root: string, name: string) => Number(readFileSync(join(root, "pids", name), "utf8").trim());

describe("npm run setup: concurrent builds", () => {
  it("runs the Pulumi, S3 server, actionlint and image builds at the same time and writes their results to tools.env", () => {
    const all = ["pulumi", "s3", "actionlint", "image"];
    const others = (me: string) => all.filter((n) => n !== me);
    const { root, copy, env } = makeRepo((r) => ({
      pulumi: stub(r, "pulumi", others("pulumi"), pulumiBuilt(r)),
      s3: stub(r, "s3", others("s3"), `printf '#!/bin/sh\\n' >"${r}/versitygw"; chmod +x "${r}/versitygw"; echo "${r}/versitygw"`),
      actionlint: stub(r, "actionlint", others("actionlint"), `echo "${r}/actionlint"`),
      image: stub(r, "image", others("image"), `echo COMFYUME_SIM_ROOTFS=${r}/rootfs; echo COMFYUME_SIM_MIRROR=${r}/mirror`),
    }));
    const run = spawnSync("bash", [join(copy, "scripts/setup/setup.sh")], { env, encoding: "utf8", timeout: 60_000 });
    // Each stub waits for all the others to have started: run one after another, the first would give up.
    expect(run.stderr).not.toMatch(/never started alongside/);
    expect(run.status, run.stderr).toBe(0);
    const tools = readFileSync(join(copy, ".comfyume/tools.env"), "utf8");
    expect(tools).toContain(`COMFYUME_S3_SERVER=${root}/versitygw`);
    expect(tools).toContain(`COMFYUME_SIM_ROOTFS=${root}/rootfs`);
    expect(tools).toContain(`COMFYUME_PULUMI_BIN=${root}/cache/pulumi-v${pulumiVersion}/bin`);
    // What each build says reaches the operator, named by its step.
    expect(run.stderr).toContain("[s3 server] stub s3: building (a stub)");
    expect(run.stderr).toMatch(/pulumi from Go modules\s+[\d.]+\s+ok \(concurrent\)/);
  });

  it("stops the other builds and fails naming the step when one build fails", () => {
    const { root, copy, env } = makeRepo((r) => ({
      pulumi: stub(r, "pulumi", [], "sleep 120 & wait"),
      s3: stub(r, "s3", ["pulumi", "image"], 'echo "go: stub compile error in versitygw" >&2; exit 3'),
      actionlint: stub(r, "actionlint", [], `echo "${r}/actionlint"`),
      image: stub(r, "image", [], "sleep 120 & wait"),
    }));
    const run = spawnSync("bash", [join(copy, "scripts/setup/setup.sh")], { env, encoding: "utf8", timeout: 60_000 });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain("[s3 server] go: stub compile error in versitygw");
    expect(run.stderr).toMatch(/setup step 's3 server' failed \(exit 3\); its full log: .*s3-server\.out\.log/);
    // The builds still running were stopped with the setup, not left behind.
    expect(alive(pidOf(root, "pulumi"))).toBe(false);
    expect(alive(pidOf(root, "image"))).toBe(false);
    expect(existsSync(join(copy, ".comfyume/tools.env"))).toBe(false);
  });

  it("stops every build when the setup itself is interrupted", async () => {
    const { root, copy, env } = makeRepo((r) => ({
      pulumi: stub(r, "pulumi", [], "sleep 120 & wait"),
      s3: stub(r, "s3", [], "sleep 120 & wait"),
      actionlint: stub(r, "actionlint", [], "sleep 120 & wait"),
      image: stub(r, "image", ["pulumi", "s3", "actionlint"], `: >"${r}/started/all"; sleep 120 & wait`),
    }));
    const child = spawn("bash", [join(copy, "scripts/setup/setup.sh")], { env, stdio: "ignore" });
    const exited = new Promise<number | null>((done) => child.on("exit", (code) => done(code)));
    for (let i = 0; i < 300 && !existsSync(join(root, "started/all")); i++) await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(join(root, "started/all"))).toBe(true);
    child.kill("SIGTERM");
    expect(await exited).toBe(143);
    for (const name of ["pulumi", "s3", "actionlint", "image"]) expect(alive(pidOf(root, name)), name).toBe(false);
  });
});
