// mount-sfs.sh --sfs-id: the SFS it mounted must carry the identity marker (.comfyume/sfs-id) of the SFS
// the config names, so a testing stack can never silently mount production's SFS. The loader writes the
// marker at seeding (--write-marker). mount/mountpoint/umount are shims (no NFS here); the mount point's
// directory stands for the SFS's content.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cleanupTmp, makeShims, run, tmp, write } from "./helpers";

afterAll(() => cleanupTmp());

const target = "nfs.fin-01.datacrunch.io:/CLONE_SFS-Model-Vault-16-Feb-97Es5EBC";
const PROD_ID = "be539393-0000-4000-8000-000000000001";
const CLONE_ID = "fd7efb9e-0000-4000-8000-000000000002";

/** A umount shim that drops the mount point from the shim's mount table. */
function withUmount(shims: ReturnType<typeof makeShims>): Record<string, string> {
  const umount = join(shims.dir, "umount");
  write(
    umount,
    `#!/usr/bin/env bash\nprintf 'umount %s\\n' "$*" >>"$SHIM_STATE/calls.log"\nawk -v d="$1" '$2 != d' "$SHIM_STATE/mounts" >"$SHIM_STATE/mounts.new" && mv "$SHIM_STATE/mounts.new" "$SHIM_STATE/mounts"\n`,
    0o755,
  );
  return { ...shims.env, UMOUNT_CMD: umount, SFS_MOUNT_RETRY_DELAY: "0" };
}

function sandbox(marker?: string) {
  const shims = makeShims();
  const root = tmp("sfsid");
  write(join(shims.nfsExports, "nfs.fin-01.datacrunch.io/CLONE_SFS-Model-Vault-16-Feb-97Es5EBC/.keep"), "");
  if (marker !== undefined) write(join(root, "mnt/sfs/.comfyume/sfs-id"), `${marker}\n`);
  return { shims, root, env: { ...withUmount(shims), COMFYUME_ROOT: root } };
}

const mounted = (shims: ReturnType<typeof makeShims>) => readFileSync(join(shims.state, "mounts"), "utf8").trim();

describe("mount-sfs --sfs-id (the SFS identity marker)", () => {
  it("refuses the wrong SFS: the marker names production's SFS, the config names the clone; the mount is undone", async () => {
    const { shims, root, env } = sandbox(PROD_ID);
    const r = await run("mount-sfs.sh", ["--target", target, "--sfs-id", CLONE_ID, "--no-fstab"], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/FAILED in step 'identity'/);
    expect(r.stderr).toContain(`is SFS ${PROD_ID}`);
    expect(r.stderr).toContain(`not ${CLONE_ID}`);
    expect(r.stderr).toMatch(/umount|unmounted/);
    expect(mounted(shims)).toBe("");
    expect(readFileSync(join(root, "mnt/sfs/.comfyume/sfs-id"), "utf8").trim()).toBe(PROD_ID);
  });

  it("refuses an SFS without a marker unless told to write it (at seeding), then accepts it", async () => {
    const { shims, root, env } = sandbox();
    const r1 = await run("mount-sfs.sh", ["--target", target, "--sfs-id", CLONE_ID, "--no-fstab"], { env });
    expect(r1.code).toBe(1);
    expect(r1.stderr).toMatch(/no SFS identity marker/);
    expect(r1.stderr).toContain("--write-marker");
    expect(mounted(shims)).toBe("");
    expect(existsSync(join(root, "mnt/sfs/.comfyume/sfs-id"))).toBe(false);

    const r2 = await run("mount-sfs.sh", ["--target", target, "--sfs-id", CLONE_ID, "--write-marker", "--no-fstab"], { env });
    expect(r2.code, r2.stderr).toBe(0);
    expect(readFileSync(join(root, "mnt/sfs/.comfyume/sfs-id"), "utf8").trim()).toBe(CLONE_ID);

    const r3 = await run("mount-sfs.sh", ["--target", target, "--sfs-id", CLONE_ID, "--no-fstab"], { env });
    expect(r3.code, r3.stderr).toBe(0);
    expect(r3.stderr).toMatch(/identity\s+[\d.]+\s+unchanged/);
  });

  it("--write-marker never overwrites another SFS's marker", async () => {
    const { root, env } = sandbox(PROD_ID);
    const r = await run("mount-sfs.sh", ["--target", target, "--sfs-id", CLONE_ID, "--write-marker", "--no-fstab"], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`is SFS ${PROD_ID}`);
    expect(readFileSync(join(root, "mnt/sfs/.comfyume/sfs-id"), "utf8").trim()).toBe(PROD_ID);
  });

  it("rejects a malformed --sfs-id before mounting anything", async () => {
    const { shims, env } = sandbox();
    const r = await run("mount-sfs.sh", ["--target", target, "--sfs-id", "../etc", "--no-fstab"], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/SFS_ID/);
    expect(shims.calls().filter((c) => c.startsWith("mount "))).toEqual([]);
  });
});
