// Each simulated machine is the stock Debian rootfs with the image's own OpenSSH sshd: OpenSSH's
// client logs in pinned to any of its three host keys, the machine lacks what the image lacks
// (rclone, jq, nfs-common) until apt installs it from the package mirror, and the SFS is a real
// mount that find(1) enters.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { connect } from "node:net";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLocalCloud, type HostInfo, type LocalCloud } from "../../sim/local-cloud";
import { ssh, until, verdaClient } from "./helpers";

let cloud: LocalCloud;
let instanceId = "";
let sfsId = "";
let scratchId = "";
const PATH = "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

function banner(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port });
    s.once("data", (d: Buffer) => {
      s.destroy();
      resolve(d.toString().split("\r\n")[0]!);
    });
    s.once("error", reject);
  });
}

const publicKey = (host: HostInfo, kind: string) => readFileSync(path.join(host.root, `etc/ssh/ssh_host_${kind}_key.pub`), "utf8").split(" ").slice(0, 2).join(" ");

beforeAll(async () => {
  cloud = await startLocalCloud({
    loopbackNet: "127.73.0",
    modelSizesMiB: [1, 1, 1],
    timing: { orderedMs: 30, provisioningMs: 60, volumeCreateMs: 20, volumeAttachMs: 20, instanceActionMs: 20, instanceDeleteMs: 20 },
  });
  const api = verdaClient(cloud);
  const keyId = await api.createSshKey({ name: "admin", key: cloud.env.COMFYUME_SIM_ADMIN_PUBLIC_KEY! });
  sfsId = await api.createVolume({ type: "NVMe_Shared", name: "sfs", size: 1, location_code: "FIN-01" });
  scratchId = await api.createVolume({ type: "NVMe", name: "scratch", size: 1, location_code: "FIN-01" });
  await until("volumes created", async () => {
    const vs = await Promise.all([api.getVolume(sfsId), api.getVolume(scratchId)]);
    return vs.every((v) => v && (v.status === "created" || v.status === "detached")) ? true : undefined;
  });
  instanceId = await api.deployInstance({
    instance_type: "CPU.4V.16G", image: "ubuntu-24.04", hostname: "lc-machine", description: "machine test", location_code: "FIN-01",
    ssh_key_ids: [keyId], existing_volumes: [sfsId, scratchId],
  });
}, 120_000);

afterAll(async () => {
  await cloud?.close();
});

describe("local cloud: a simulated machine", () => {
  it("answers with the image's OpenSSH sshd; OpenSSH's client logs in pinned to its ed25519, ecdsa or rsa key", async () => {
    const host = await cloud.waitForInstanceHost(instanceId, 60_000);
    expect(await banner(host.host, host.port)).toMatch(/^SSH-2\.0-OpenSSH_9\.\dp\d Debian/);
    expect(host.hostKey).toBe(publicKey(host, "ed25519"));
    expect(host.hostKeys).toEqual(["ed25519", "ecdsa", "rsa"].map((kind) => publicKey(host, kind)));
    expect(host.hostKeys.map((k) => k.split(" ")[0])).toEqual(["ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"]);
    for (const kind of ["ed25519", "ecdsa", "rsa"]) {
      const r = await ssh(cloud, { ...host, hostKey: publicKey(host, kind) }, "hostname; cat /etc/debian_version");
      expect(r.code, `${kind}: ${r.stderr}`).toBe(0);
      expect(r.stdout.split("\n")[0]).toBe("lc-machine");
    }
    const wrong = await ssh(cloud, { ...host, hostKey: cloud.mello.hostKey }, "true");
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
  });

  it("has only what the image has: no rclone, jq or mount.nfs; an NFS mount is refused as util-linux refuses it", async () => {
    const host = await cloud.waitForInstanceHost(instanceId, 60_000);
    const r = await ssh(cloud, host, "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; for t in rclone jq mount.nfs; do command -v $t || echo \"no $t\"; done");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split("\n")).toEqual(["no rclone", "no jq", "no mount.nfs"]);
    const sfs = await verdaClient(cloud).getVolume(sfsId);
    const m = await ssh(cloud, host, `export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; mkdir -p /mnt/sfs; mount -t nfs '${sfs!.target}' /mnt/sfs`);
    expect(m.code).toBe(32);
    expect(m.stderr).toContain("mount: /mnt/sfs: bad option; for several filesystems (e.g. nfs, cifs) you might need a /sbin/mount.<type> helper program.");
  });

  it("installs jq, rclone and nfs-common from the package mirror; then the SFS mounts for real and find enters it", async () => {
    const host = await cloud.waitForInstanceHost(instanceId, 60_000);
    const apt = await ssh(cloud, host, "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive; apt-get update -q && apt-get install -y -q jq rclone nfs-common >/dev/null && jq --version && rclone version | head -1");
    expect(apt.code, apt.stderr).toBe(0);
    expect(apt.stdout).toMatch(/jq-1\.6/);
    expect(apt.stdout).toMatch(/rclone v1\.\d+/);
    spawnSync("bash", ["-c", `mkdir -p '${cloud.sfsDir(sfsId)}/models/a' && echo model >'${cloud.sfsDir(sfsId)}/models/a/m.bin'`]);
    const sfs = await verdaClient(cloud).getVolume(sfsId);
    const m = await ssh(cloud, host, `export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; mkdir -p /mnt/sfs; mount -t nfs -o nconnect=16 '${sfs!.target}' /mnt/sfs && awk '$2 == "/mnt/sfs" { print $1 }' /proc/mounts && find /mnt/sfs -type f && mountpoint -q /mnt/sfs && echo mounted`);
    expect(m.code, m.stderr).toBe(0);
    expect(m.stdout.trim().split("\n")).toEqual([sfs!.target, "/mnt/sfs/models/a/m.bin", "mounted"]);
    // A volume Verda does not report attached is refused by the "server".
    const other = await ssh(cloud, host, "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; mkdir -p /mnt/x; mount -t nfs nfs.example:/SFS-not-attached /mnt/x");
    expect(other.code).toBe(32);
    expect(other.stderr).toMatch(/access denied by server/);
  });

  it("gives the scratch volume as a real block device: the image's blkid and mkfs.ext4 run on it; the I/O-error fault fails blkid", async () => {
    const dev = `/dev/disk/by-id/virtio-${scratchId.replace(/-/g, "").slice(-12)}`;
    const blank = await cloud.exec(instanceId, `${PATH}; test -b /dev/vdb && blkid -p ${dev}; echo "blkid $?"`);
    expect(blank.out.trim()).toBe("blkid 2");
    const fmt = await cloud.exec(instanceId, `${PATH}; mkfs.ext4 -q -F ${dev} && mkdir -p /mnt/scratch && mount ${dev} /mnt/scratch && echo kept >/mnt/scratch/f && blkid -p -o value -s TYPE /dev/vdb && awk '$2 == "/mnt/scratch" { print $1 }' /proc/mounts`);
    expect(fmt.code, fmt.out).toBe(0);
    expect(fmt.out.trim().split("\n")).toEqual(["ext4", "/dev/vdb"]);
    // From outside: a read-only view of the live file system.
    expect(cloud.readScratch(scratchId, (dir) => readFileSync(path.join(dir, "f"), "utf8"))).toBe("kept\n");
    cloud.faults.probeIoError(scratchId, true);
    const bad = await cloud.exec(instanceId, `${PATH}; blkid -p /dev/vdb; echo "blkid $?"`);
    expect(bad.out).toContain("blkid: error: /dev/vdb: Input/output error");
    expect(bad.out.trim().split("\n").pop()).toBe("blkid 2");
    cloud.faults.probeIoError(scratchId, false);
    const ok = await cloud.exec(instanceId, `${PATH}; blkid -p -o value -s TYPE /dev/vdb`);
    expect(ok.out.trim()).toBe("ext4");
  });

  it("sshDown kills sshd and every session; sshUp brings the same sshd and keys back", async () => {
    const host = await cloud.waitForInstanceHost(instanceId, 60_000);
    const long = ssh(cloud, host, "sleep 300; echo survived");
    await until("the session's sleep runs", async () => ((await cloud.exec(instanceId, "pgrep -a -x sleep | grep -c ' 300$'")).out.trim() !== "0" ? true : undefined));
    await cloud.faults.sshDown(instanceId);
    const killed = await long;
    expect(killed.code).not.toBe(0);
    expect(killed.stdout).not.toContain("survived");
    const refused = await ssh(cloud, host, "true");
    expect(refused.code).toBe(255);
    expect(refused.stderr).toMatch(/Connection refused/);
    await cloud.faults.sshUp(instanceId);
    const back = await ssh(cloud, host, "hostname");
    expect(back.code, back.stderr).toBe(0);
    expect(back.stdout.trim()).toBe("lc-machine");
  });

  it("sfsFull: the SFS mounted on the machine has no space left while on, and its space back after", async () => {
    cloud.faults.sfsFull(sfsId, true);
    const full = await cloud.exec(instanceId, `${PATH}; df --output=avail -B1 /mnt/sfs | tail -1; { echo x >/mnt/sfs/more || echo refused; } 2>&1`); // one stream: the error line comes before "refused"
    expect(full.out).toMatch(/^\s*0\n/);
    expect(full.out).toMatch(/No space left on device\nrefused/);
    expect(readFileSync(path.join(cloud.sfsDir(sfsId), "models/a/m.bin"), "utf8")).toBe("model\n");
    cloud.faults.sfsFull(sfsId, false);
    const back = await cloud.exec(instanceId, `${PATH}; echo x >/mnt/sfs/more && ls -A /mnt/sfs`);
    expect(back.code, back.out).toBe(0);
    expect(back.out.trim().split("\n").sort()).toEqual(["models", "more"]);
  });
});
