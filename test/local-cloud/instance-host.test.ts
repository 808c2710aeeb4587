// An instance created through the simulated Verda API gets a machine (stock rootfs, real sshd) at its
// own loopback IP, presenting the host key the cloud reports; the real host scripts run on it over
// SSH against the seeded R2 once apt installed their tools from the mirror (as the bootstrap will);
// the scratch is a real block device; volumes outlive the instance and its machine stops when it is
// deleted.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, lstatSync, readFileSync } from "node:fs";
import { connect } from "node:net";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLocalCloud, type LocalCloud } from "../../sim/local-cloud";
import type { VerdaClient } from "../../infra/verda/client";
import { ssh, until, verdaClient } from "./helpers";

const REPO = path.resolve(__dirname, "../..");
const PATH = "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/** What the toolchain bootstrap installs from the package mirror (the stock image has none of them). */
const INSTALL_TOOLS = `${PATH} DEBIAN_FRONTEND=noninteractive; apt-get update -q >/dev/null && apt-get install -y -q jq rclone nfs-common >/dev/null`;
let cloud: LocalCloud;
let api: VerdaClient;
let instanceId = "";
let sfsId = "";
let scratchId = "";

function sha256(file: string): string {
  return createHash("sha256").update(readFileSync(file)).digest("hex");
}

function refused(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.once("connect", () => {
      s.destroy();
      resolve(false);
    });
    s.once("error", () => resolve(true));
  });
}

beforeAll(async () => {
  cloud = await startLocalCloud({
    loopbackNet: "127.77.0",
    timing: { orderedMs: 30, provisioningMs: 60, volumeCreateMs: 20, volumeAttachMs: 20, instanceActionMs: 20, instanceDeleteMs: 20 },
    modelSizesMiB: [2, 1, 1],
  });
  api = verdaClient(cloud);
  const keyId = await api.createSshKey({ name: "admin", key: cloud.env.COMFYUME_SIM_ADMIN_PUBLIC_KEY! });
  sfsId = await api.createVolume({ type: "NVMe_Shared", name: "sfs-test", size: 10, location_code: "FIN-01" });
  scratchId = await api.createVolume({ type: "NVMe", name: "scratch-test", size: 5, location_code: "FIN-01" });
  await until("volumes ready", async () => {
    const vs = await Promise.all([api.getVolume(sfsId), api.getVolume(scratchId)]);
    return vs.every((v) => v && (v.status === "created" || v.status === "detached")) ? true : undefined;
  });
  instanceId = await api.deployInstance({
    instance_type: "CPU.4V.16G", image: "ubuntu-24.04", hostname: "lc-test", description: "local cloud test", location_code: "FIN-01",
    ssh_key_ids: [keyId], existing_volumes: [sfsId, scratchId],
  });
}, 120_000);

afterAll(async () => {
  await cloud?.close();
});

describe("local cloud: an instance host", () => {
  it("is reachable with OpenSSH at the instance's loopback IP, pinned to the reported host key", async () => {
    const inst = await until("instance running", async () => {
      const i = await api.getInstance(instanceId);
      return i?.status === "running" ? i : undefined;
    });
    expect(inst.ip).toMatch(/^127\.77\.0\.(1\d|[2-9]\d|1\d\d|2[0-4]\d|250)$/);
    const host = await cloud.waitForInstanceHost(instanceId, 15_000);
    expect(host.host).toBe(inst.ip);
    expect(host.port).toBe(2222);
    // The key sshd presents is the one in the machine's /etc/ssh, like a fresh VM's own key.
    expect(readFileSync(path.join(host.root, "etc/ssh/ssh_host_ed25519_key.pub"), "utf8")).toContain(host.hostKey);
    const r = await ssh(cloud, host, "echo hello from $(hostname) at $(cat /var/lib/comfyume-sim/host-ip)");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(`hello from lc-test at ${inst.ip}`);
    // A wrong pinned key is refused by the client.
    const wrong = await ssh(cloud, { ...host, hostKey: cloud.mello.hostKey }, "true");
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
  });

  it("runs mount-sfs, prepare-scratch and seed-sfs over SSH against the seeded R2", async () => {
    const host = await cloud.waitForInstanceHost(instanceId, 15_000);
    // The scripts travel as the program copies them: to /opt/comfyume, which the host maps to its own root.
    const tar = spawnSync("tar", ["-C", path.join(REPO, "scripts"), "-cf", "-", "host", "lib"]);
    const tools = await ssh(cloud, host, INSTALL_TOOLS);
    expect(tools.code, tools.stderr).toBe(0);
    const copy = await ssh(cloud, host, "mkdir -p /opt/comfyume && tar -C /opt/comfyume -xf - && ls /opt/comfyume/host", tar.stdout.toString("latin1"));
    expect(copy.code, copy.stderr).toBe(0);
    expect(existsSync(path.join(host.root, "opt/comfyume/host/seed-sfs.sh"))).toBe(true);

    const sfs = await api.getVolume(sfsId);
    const mount = await ssh(cloud, host, `bash /opt/comfyume/host/mount-sfs.sh --target '${sfs!.target}' --mount-point /mnt/sfs`);
    expect(mount.code, mount.stderr).toBe(0);
    expect(readFileSync(path.join(host.root, "etc/fstab"), "utf8")).toContain(`${sfs!.target} /mnt/sfs nfs nconnect=16,nofail,_netdev 0 0`);

    // A real block device by the Verda device name, and the by-id name as on Verda (last 12 hex digits of the id).
    const byId = `/dev/disk/by-id/virtio-${scratchId.replace(/-/g, "").slice(-12)}`;
    const dev = await ssh(cloud, host, `test -b /dev/vdb && readlink ${byId} && test -b ${byId}`);
    expect(dev.code, dev.stderr).toBe(0);
    expect(dev.stdout.trim()).toBe("../../vdb");
    const scratch = await ssh(cloud, host, "bash /opt/comfyume/host/prepare-scratch.sh --target vdb --mount-point /mnt/scratch");
    expect(scratch.code, scratch.stderr).toBe(0);
    expect(scratch.stderr).toMatch(/format-if-blank\s+[\d.]+\s+formatted/);
    const blkid = spawnSync("blkid", ["-p", "-o", "value", "-s", "UUID", cloud.scratchImage(scratchId)], { encoding: "utf8" });
    expect(blkid.stdout.trim()).toMatch(/^[0-9a-f-]{36}$/);
    const mounted = await cloud.exec(instanceId, "awk '$2 == \"/mnt/scratch\" { print $1, $3 }' /proc/mounts; blkid -o value -s UUID /dev/vdb");
    expect(mounted.out.trim().split("\n")).toEqual(["/dev/vdb ext4", blkid.stdout.trim()]);
    const again = await ssh(cloud, host, "bash /opt/comfyume/host/prepare-scratch.sh --target vdb --mount-point /mnt/scratch");
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/format-if-blank\s+[\d.]+\s+kept/);

    const keys = `R2_ACCESS_KEY_ID=${cloud.s3.accessKeyId}\nR2_SECRET_ACCESS_KEY=${cloud.s3.secretAccessKey}\n`;
    const seed = await ssh(cloud, host, `bash /opt/comfyume/host/seed-sfs.sh --r2-endpoint '${cloud.s3.endpoint}' --sfs /mnt/sfs --min-free-mb 1`, keys);
    expect(seed.code, seed.stderr).toBe(0);
    const staged = path.join(cloud.dir, "seed/sfs");
    for (const rel of ["models/checkpoints/sim-base-v1.safetensors", "models/loras/sim-style-v1.safetensors", "models/vae/sim-vae-v1.safetensors", "worker-image.tar.gz"]) {
      expect(sha256(path.join(cloud.sfsDir(sfsId), rel)), rel).toBe(sha256(path.join(staged, rel)));
    }
    const set = cloud.env.COMFYUME_SIM_WORKER_BACKUP_SET!;
    const latest = readFileSync(path.join(cloud.sfsDir(sfsId), "cache/backups", set, "latest"), "utf8").trim();
    expect(existsSync(path.join(cloud.sfsDir(sfsId), "cache/backups", set, latest, "ssh-host-keys.tar.gz"))).toBe(true);
    const calls = readFileSync(path.join(host.state, "calls.log"), "utf8");
    expect(calls).toContain(`mount -t nfs -o nconnect=16 ${sfs!.target} /mnt/sfs`);
  });

  it("restores the seeded worker over SSH: Tailscale identity, worker image, ComfyUI and Redis stand-ins answer", async () => {
    const host = await cloud.waitForInstanceHost(instanceId, 15_000);
    const e = cloud.env;
    const secrets = `TAILSCALE_AUTH_KEY=${e.COMFYUME_SIM_TAILSCALE_AUTH_KEY}\nREDIS_PASSWORD=${e.COMFYUME_SIM_REDIS_PASSWORD}\n`;
    const args = [
      "--sfs /mnt/sfs", `--name ${e.COMFYUME_SIM_WORKER_BACKUP_SET}`, `--expected-tailscale-ip ${e.COMFYUME_SIM_WORKER_TAILSCALE_IP}`,
      `--redis-host ${e.COMFYUME_SIM_REDIS_HOST}`, `--redis-port ${e.COMFYUME_SIM_REDIS_PORT}`, "--health-timeout 20", "--skip ssh-host-keys",
    ].join(" ");
    const r = await ssh(cloud, host, `bash /opt/comfyume/host/restore-instance.sh ${args}`, secrets);
    expect(r.code, r.stderr).toBe(0);
    for (const step of ["tailscale-up", "worker-image", "worker-start"]) expect(r.stderr).toMatch(new RegExp(`${step}\\s+[\\d.]+\\s+changed`));
    for (const step of ["health-comfyui", "health-redis"]) expect(r.stderr).toMatch(new RegExp(`${step}\\s+[\\d.]+\\s+ok`));
    const calls = readFileSync(path.join(host.state, "calls.log"), "utf8");
    expect(calls).toContain(`docker load -i /mnt/sfs/worker-image.tar.gz`);
    expect(readFileSync(path.join(host.state, "docker/images"), "utf8").trim()).toBe(cloud.seed.workerImageId);
    // No cron daemon: the cloud runs the installed cron.d job on demand, as the next tick would.
    const cron = await ssh(cloud, host, `bash /opt/comfyume/host/install-backup-cron.sh --schedule '17 * * * *' -- --name ${e.COMFYUME_SIM_WORKER_BACKUP_SET} --sfs /mnt/sfs --min-free-mb 1`);
    expect(cron.code, cron.stderr).toBe(0);
    const runs = await cloud.runCronJobs(instanceId);
    expect(runs.map((x) => [x.file, x.code])).toEqual([["comfyume-backup-instance", 0]]);
    expect(readFileSync(path.join(host.root, "var/lib/comfyume/backup-instance.status"), "utf8")).toMatch(/last_result=(ok|unchanged)/);
    // A wrong Redis password is refused by the stand-in.
    const bad = await ssh(cloud, host, `bash /opt/comfyume/host/restore-instance.sh ${args.replace("--health-timeout 20", "--health-timeout 1")}`, secrets.replace(/REDIS_PASSWORD=.*/, "REDIS_PASSWORD=wrong-password-xx"));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/AUTH refused/);
  });

  it("stops the host when the instance is deleted; the SFS and the scratch image stay", async () => {
    const host = await cloud.waitForInstanceHost(instanceId, 15_000);
    await api.instanceAction({ id: instanceId, action: "delete", volume_ids: [] });
    await until("instance host gone", () => (cloud.instances().has(instanceId) ? undefined : true));
    expect(await refused(host.host, host.port)).toBe(true);
    expect(existsSync(path.join(cloud.sfsDir(sfsId), "models/checkpoints/sim-base-v1.safetensors"))).toBe(true);
    expect(lstatSync(cloud.scratchImage(scratchId)).isFile()).toBe(true);
    // With no machine left, the kept scratch's files are still readable (a read-only mount for the call).
    expect(cloud.readScratch(scratchId, (dir) => ["inputs", "outputs", "temp"].map((d) => existsSync(path.join(dir, d))))).toEqual([true, true, true]);
    expect(cloud.waitedOnCloudMs()).toBeGreaterThan(0);
  });

  it("runs a first-boot startup script in the instance's namespace: a restored identity is the key sshd presents", async () => {
    const realEtcSsh = spawnSync("bash", ["-c", "ls -la /etc/ssh | sha256sum"], { encoding: "utf8" }).stdout;
    const sfs = await api.getVolume(sfsId);
    const set = cloud.env.COMFYUME_SIM_WORKER_BACKUP_SET!;
    const script = [
      "#!/bin/bash",
      "set -eu",
      INSTALL_TOOLS,
      "mkdir -p /mnt/sfs",
      `mountpoint -q /mnt/sfs || mount -t nfs -o nconnect=16 '${sfs!.target}' /mnt/sfs`,
      `dir=/mnt/sfs/cache/backups/${set}`,
      'tmp=$(mktemp -d)',
      'tar -xzf "$dir/$(cat "$dir/latest")/ssh-host-keys.tar.gz" -C "$tmp"',
      'install -m 600 "$tmp"/ssh_host_*_key /etc/ssh/',
      'install -m 644 "$tmp"/ssh_host_*_key.pub /etc/ssh/',
      "systemctl restart ssh",
      "",
    ].join("\n");
    const scriptId = await api.createStartupScript({ name: "first-boot", script });
    const keyId = (await api.createSshKey({ name: "admin-2", key: cloud.env.COMFYUME_SIM_ADMIN_PUBLIC_KEY! }));
    const id = await api.deployInstance({
      instance_type: "CPU.4V.16G", image: "ubuntu-24.04", hostname: "lc-pinned", description: "pinned identity", location_code: "FIN-01",
      ssh_key_ids: [keyId], existing_volumes: [sfsId], startup_script_id: scriptId,
    });
    const host = await cloud.waitForInstanceHost(id, 90_000);
    // The identity in the newest snapshot (the cron run above saved the first instance's own key).
    const setDir = path.join(cloud.sfsDir(sfsId), "cache/backups", set);
    const latest = readFileSync(path.join(setDir, "latest"), "utf8").trim();
    const saved = spawnSync("tar", ["-xzOf", path.join(setDir, latest, "ssh-host-keys.tar.gz"), "ssh_host_ed25519_key.pub"], { encoding: "utf8" });
    const identity = saved.stdout.split(" ").slice(0, 2).join(" ");
    expect(identity).toMatch(/^ssh-ed25519 /);
    expect(host.hostKey).toBe(identity);
    const r = await ssh(cloud, { ...host, hostKey: identity }, "cat /etc/ssh/ssh_host_ed25519_key.pub");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(identity);
    expect(readFileSync(path.join(host.state, "calls.log"), "utf8")).toContain("systemctl restart ssh");
    // The machine's /etc/ssh is its own (its overlay): this computer's /etc/ssh is untouched.
    expect(spawnSync("bash", ["-c", "ls -la /etc/ssh | sha256sum"], { encoding: "utf8" }).stdout).toBe(realEtcSsh);
  });
});
