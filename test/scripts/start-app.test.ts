// start-app.sh: the app host's compose up (every file, profile and service from config) and the check
// that Redis answers AUTH + PING where the day's workers reach it. A docker shim records the calls and
// "starts" services; the Redis stand-in listens on 127.0.112.8 and answers only once the
// shim started `redis`.
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRedisStandIn, type Closable } from "../../sim/local-cloud/stand-ins";
import { makeWorkerTarball, run, tmp, write } from "./helpers";

const HOST = "127.0.112.8";
const PASSWORD = "app-redis-password-do-not-leak";
let redis: Closable;
let port = 0;
let runningDir = "";

/** A docker shim: `compose ... up -d A B` marks A and B running unless listed in $SHIM_BROKEN; ps answers for running ones. */
const DOCKER = `#!/usr/bin/env bash
printf 'docker %s\\n' "$*" >>"$SHIM_STATE/calls.log"
case $1 in
  image) grep -qx "\${@: -1}" "$SHIM_STATE/images" 2>/dev/null || exit 1 ;;
  load) echo "sha256:loaded" >>"$SHIM_STATE/images" ;;
  compose)
    if [[ " $* " == *" up "* ]]; then
      up=0; for a in "$@"; do
        if ((up)) && [[ $a != -* ]] && [[ " \${SHIM_BROKEN:-} " != *" $a "* ]]; then touch "$SHIM_STATE/running-$a"; fi
        [[ $a == up ]] && up=1
      done
    elif [[ " $* " == *" ps "* ]]; then
      [[ -f "$SHIM_STATE/running-\${@: -1}" ]] && echo "c0ffee"
    fi ;;
esac
exit 0
`;

beforeAll(async () => {
  runningDir = tmp("start-app-redis");
  port = 20000 + Math.floor(Math.random() * 20000);
  redis = await startRedisStandIn(HOST, port, PASSWORD, () => existsSync(join(runningDir, "running-redis")));
});
afterAll(async () => {
  await redis?.close();
});

function appHost(): { root: string; env: Record<string, string>; project: string } {
  const root = tmp("start-app");
  const project = join(root, "home/dev/comfyume-v1");
  write(join(project, "docker-compose.yml"), "services: {}\n");
  write(join(project, "docker-compose.users.yml"), "services: {}\n");
  write(join(project, ".env"), "REDIS_HOST=redis\n", 0o600);
  write(join(runningDir, "calls.log"), "");
  write(join(root, "bin/docker"), DOCKER, 0o755);
  for (const f of ["running-redis", "running-queue-manager", "running-admin", "images"]) rmSync(join(runningDir, f), { force: true });
  return { root, project, env: { COMFYUME_ROOT: root, DOCKER_CMD: join(root, "bin/docker"), SHIM_STATE: runningDir } };
}

const args = (extra: string[] = []) => [
  "--compose-file", "docker-compose.yml", "--compose-file", "docker-compose.users.yml", "--profile", "container-nginx",
  "--service", "redis", "--service", "queue-manager", "--service", "admin",
  "--redis-host", HOST, "--redis-port", String(port), "--health-timeout", "3", ...extra,
];

describe("start-app.sh", () => {
  it("starts every service with every compose file and profile, checks Redis, and changes nothing on a second run", async () => {
    const h = appHost();
    const tarball = join(h.root, "mnt/sfs/app.tar.gz");
    makeWorkerTarball(tarball, "app");
    const r = await run("start-app.sh", args(["--image-tarball", tarball]), { env: h.env, input: `REDIS_PASSWORD=${PASSWORD}\n` });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`Redis at ${HOST}:${port} answers PONG`);
    expect(r.stderr).not.toContain(PASSWORD);
    const calls = readFileSync(join(runningDir, "calls.log"), "utf8");
    expect(calls).toContain(`compose -f ${h.project}/docker-compose.yml -f ${h.project}/docker-compose.users.yml --profile container-nginx --env-file ${h.project}/.env up -d redis queue-manager admin`);
    expect(calls).toMatch(/^docker load -i .*app\.tar\.gz$/m);
    const again = await run("start-app.sh", args(), { env: h.env, input: `REDIS_PASSWORD=${PASSWORD}\n` });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/step services: done in [\d.]+s \(unchanged\)/);
  });

  it("--check-only (an adopted app host) starts and loads nothing: passes when all run and Redis answers, else names what does not run", async () => {
    const h = appHost();
    const tarball = join(h.root, "mnt/sfs/app.tar.gz");
    makeWorkerTarball(tarball, "app");
    const down = await run("start-app.sh", args(["--check-only", "--image-tarball", tarball]), { env: h.env, input: `REDIS_PASSWORD=${PASSWORD}\n` });
    expect(down.code).toBe(1);
    expect(down.stderr).toContain("not running on this adopted app host: redis queue-manager admin");
    expect(down.stderr).toContain("the stack never starts an adopted app");
    for (const s of ["redis", "queue-manager", "admin"]) write(join(runningDir, `running-${s}`), "");
    const up = await run("start-app.sh", args(["--check-only", "--image-tarball", tarball]), { env: h.env, input: `REDIS_PASSWORD=${PASSWORD}\n` });
    expect(up.code, up.stderr).toBe(0);
    expect(up.stderr).toContain(`Redis at ${HOST}:${port} answers PONG`);
    const calls = readFileSync(join(runningDir, "calls.log"), "utf8");
    expect(calls).not.toMatch(/ up | load /);
  });

  it("fails naming the service that did not start", async () => {
    const h = appHost();
    const r = await run("start-app.sh", args(), { env: { ...h.env, SHIM_BROKEN: "admin" }, input: `REDIS_PASSWORD=${PASSWORD}\n` });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("not running after docker compose up -d: admin");
  });

  it("fails naming Redis's address and the cause when the password is refused", async () => {
    const h = appHost();
    const r = await run("start-app.sh", args(), { env: h.env, input: "REDIS_PASSWORD=wrong-password\n" });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`Redis at ${HOST}:${port} did not answer PING within 3s (AUTH refused`);
    expect(r.stderr).not.toContain("wrong-password");
  });

  it("fails before starting anything when a compose file is missing, naming the setting", async () => {
    const h = appHost();
    const r = await run("start-app.sh", [...args(), "--compose-file", "docker-compose.gpu.yml"], { env: h.env, input: `REDIS_PASSWORD=${PASSWORD}\n` });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/compose file .*docker-compose\.gpu\.yml is missing .*app\.composeFiles/);
    expect(readFileSync(join(runningDir, "calls.log"), "utf8")).not.toContain(" up ");
  });
});
