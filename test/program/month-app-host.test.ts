// Phase `workshop-month` with app.host = verda: the month owns the app host (a CPU instance with the
// SFS attached), restores it from the SFS cache (R2 as fallback), starts the app, installs the hourly
// backup cron, and carries a backup-before-delete hook; the day layer reads its Redis address.
import { beforeAll, describe, expect, it } from "vitest";
import { MONTH_SECRET_KEYS, SECRETS, monthValues } from "../support/fixtures";
import { REMOTE_COMMAND, isVerda, plaintextView, promiseOf, runProgram, unwrapSecret, type ProgramRun } from "../support/mock-program";

let run: ProgramRun;
beforeAll(async () => {
  run = await runProgram(
    "workshop-month",
    {
      ...monthValues("workshop", false),
      "comfyume:redisPassword": SECRETS.redisPassword,
      "comfyume:tailscaleAuthKey": SECRETS.tailscaleAuthKey,
      "comfyume:app": { host: "verda", expectedTailscaleIp: "100.64.0.20", services: ["redis", "queue-manager"], composeFiles: ["docker-compose.yml"] },
    },
    [...MONTH_SECRET_KEYS, "comfyume:redisPassword", "comfyume:tailscaleAuthKey"],
  );
});

const command = (name: string) => run.byName(name).inputs as { create?: string; delete?: string; stdin?: unknown };
const deps = (name: string) => ((run.byName(name).opts.dependsOn ?? []) as { __name?: string }[]).map((d) => d.__name);

describe("month with the app on a Verda CPU instance", () => {
  it("creates the app host as a CPU.8V.32G instance in FIN-01 with the SFS attached, under comfyume:app:AppHost", () => {
    const host = run.byName("app-host");
    expect(host.type).toBe("comfyume:app:AppHost");
    const inst = run.byName("app-host-instance");
    expect(isVerda(inst, "Instance")).toBe(true);
    expect(inst.parentName).toBe("app-host");
    expect(inst.inputs).toMatchObject({ instanceType: "CPU.8V.32G", locationCode: "FIN-01", hostname: "comfyume-workshop-app", osVolume: { name: "comfyume-workshop-app-os", size: 100 } });
    expect(inst.inputs.existingVolumes).toEqual(["vol-shared-fs-sfs"]);
    // A config edit never replaces the running app host (its users' files live on it for the month).
    expect(inst.opts.ignoreChanges).toEqual(expect.arrayContaining(["instanceType", "locationCode", "image", "osVolume", "startupScriptId"]));
    expect(run.named("app-host-").every((r) => r.parentName?.startsWith("app-host"))).toBe(true);
  });

  it("mounts the SFS, restores from its cache (R2 as fallback), starts the app and installs the hourly cron, in order", () => {
    expect(command("app-host-mount-sfs").create).toContain("mount-sfs.sh");
    const restore = command("app-host-restore").create!;
    expect(restore).toContain("restore-instance.sh");
    expect(restore).toContain("--project-dir '/home/dev/comfyume-v1'");
    expect(restore).toContain("--name 'comfyume-workshop-app'");
    expect(restore).toContain("--r2-endpoint 'https://");
    for (const s of ["worker-image", "worker", "health-comfyui", "health-redis"]) expect(restore).toContain(`--skip '${s}'`);
    const start = command("app-host-start-app").create!;
    expect(start).toContain("start-app.sh");
    expect(start).toContain("--service 'redis' --service 'queue-manager'");
    expect(start).toContain("--profile 'container-nginx'");
    expect(start).toContain("--redis-host '100.64.0.20'");
    const cron = command("app-host-backup-cron").create!;
    expect(cron).toContain("install-backup-cron.sh");
    expect(cron).toContain("--project-dir '/home/dev/comfyume-v1'");
    expect(deps("app-host-toolchain")).toContain("app-host-mount-sfs");
    expect(deps("app-host-restore")).toContain("app-host-toolchain");
    expect(deps("app-host-start-app")).toContain("app-host-restore");
    expect(deps("app-host-backup-cron")).toContain("app-host-start-app");
  });

  it("installs the hourly R2 copy of the users' files after the app starts, the keys on stdin only", () => {
    const cron = command("app-host-r2-hourly-cron");
    expect(cron.create).toContain("app-r2-hourly.sh' install --");
    expect(cron.create).toContain("--data-dir '/home/dev/comfyume-v1/data' --dirs 'user_data,outputs,inputs' --bucket 'comfyume-user-files-backups' --prefix 'app'");
    expect(JSON.stringify(plaintextView(run.byName("app-host-r2-hourly-cron").inputs))).not.toContain("idle-r2-secret-access-key-secret");
    expect(unwrapSecret<string>(cron.stdin)).toMatch(/^R2_ACCESS_KEY_ID=.+\nR2_SECRET_ACCESS_KEY=.+/);
    expect(deps("app-host-r2-hourly-cron")).toContain("app-host-start-app");
    expect(Object.keys(run.byName("app-host-scripts-files").inputs.files as object)).toContain("/opt/comfyume/host/app-r2-hourly.sh");
  });

  it("passes secrets on stdin only", () => {
    const restore = run.byName("app-host-restore").inputs;
    expect(JSON.stringify(plaintextView(restore))).not.toContain(SECRETS.redisPassword);
    expect(JSON.stringify(plaintextView(restore))).not.toContain(SECRETS.tailscaleAuthKey);
    const stdin = unwrapSecret<string>(restore.stdin);
    expect(stdin).toContain(`TAILSCALE_AUTH_KEY=${SECRETS.tailscaleAuthKey}`);
    expect(stdin).toContain("ENV_REDIS_BIND_IP=100.64.0.20");
  });

  it("has a backup-before-delete hook: verified backups of the cache and the app's files, then the instance may go", () => {
    const hook = run.byName("app-host-backup-before-delete");
    expect(hook.type).toBe(REMOTE_COMMAND);
    const del = command("app-host-backup-before-delete").delete!;
    expect(del).toContain("backup-instance.sh");
    expect(del, del).toMatch(/backup-to-r2\.sh' .*--only 'cache'/);
    expect(del).toMatch(/backup-mello\.sh' .*--data-dir '\/home\/dev\/comfyume-v1\/data' --dirs 'user_data,outputs,inputs' --bucket 'comfyume-user-files-backups' --prefix 'app'/);
    expect(del.startsWith("set -e\n"), del).toBe(true);
    expect(hook.opts.retainOnDelete).toBeFalsy();
    expect(hook.opts.deletedWith).toBeUndefined();
    expect(deps("app-host-backup-before-delete")).toEqual(expect.arrayContaining(["app-host-instance", "app-host-sfs-share"]));
    expect((hook.opts.replaceWith as { __name?: string }[]).map((r) => r.__name)).toEqual(["app-host-instance"]);
  });

  it("exports the app host and where the day's workers reach its Redis", async () => {
    expect(await promiseOf(run.outputs.appHost)).toBe("verda");
    expect(await promiseOf(run.outputs.appRedisHost)).toBe("100.64.0.20");
    expect(await promiseOf(run.outputs.appRedisPort)).toBe(6379);
    expect(await promiseOf(run.outputs.appInstanceId)).toBe("inst-app-host-instance");
  });
});

describe("month with an app host that has no Tailscale (app.restoreSkip: tailscale)", () => {
  it("restores, snapshots hourly and backs up before delete without a Tailscale identity", async () => {
    const noTailnet = await runProgram(
      "workshop-month",
      {
        ...monthValues("workshop", false),
        "comfyume:redisPassword": SECRETS.redisPassword,
        "comfyume:tailscaleAuthKey": SECRETS.tailscaleAuthKey,
        "comfyume:app": { host: "verda", restoreSkip: ["tailscale"], redisReach: "instance-ip", redisHost: "10.0.0.5" },
      },
      [...MONTH_SECRET_KEYS, "comfyume:redisPassword", "comfyume:tailscaleAuthKey"],
    );
    const input = (name: string, key: "create" | "delete") => String((noTailnet.byName(name).inputs as Record<string, unknown>)[key]);
    expect(input("app-host-restore", "create")).toContain("--skip 'tailscale'");
    expect(input("app-host-backup-cron", "create")).toMatch(/install-backup-cron\.sh' .* -- .*--skip 'tailscale'/);
    expect(input("app-host-backup-before-delete", "delete")).toMatch(/backup-instance\.sh' .*--skip 'tailscale'/);
    // With Tailscale (the default), the identity is saved: no skip anywhere.
    expect(command("app-host-backup-before-delete").delete).not.toContain("--skip 'tailscale'");
    expect(command("app-host-backup-cron").create).not.toContain("--skip 'tailscale'");
  });
});

describe("month with the app on mello (default)", () => {
  it("declares no app host", async () => {
    const mello = await runProgram("workshop-month", monthValues("workshop", false), MONTH_SECRET_KEYS);
    expect(mello.named("app-host")).toEqual([]);
    expect(await promiseOf(mello.outputs.appHost)).toBe("mello");
    expect(mello.resources.filter((r) => isVerda(r, "Instance"))).toEqual([]);
  });
});
