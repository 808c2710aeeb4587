// Pure helpers behind the components: mount targets, script command lines, host-key handling.
import { describe, expect, it } from "vitest";
import { sfsMountTarget } from "../../components/sfs-target";
import { chain, commandDeadline, scriptCommand, shellQuote } from "../../components/remote";
import { firstBootScript, firstContactDialLimit } from "../../components/host-identity";
import { hostScriptFiles, LOCAL_SCRIPTS_DIR } from "../../components/host-scripts";
import { melloFirewallRules } from "../../components/mello";
import { bucketResources, r2Endpoint, s3SecretFromTokenValue } from "../../components/backups";

describe("sfsMountTarget", () => {
  it("takes host:path from the API's mount command and makes the path absolute", () => {
    expect(sfsMountTarget({ mountCommand: "mount -t nfs -o nconnect=16 nfs.fin-01.datacrunch.io:volume-88eb67d0 /mnt/volume" }, "FIN-01")).toBe(
      "nfs.fin-01.datacrunch.io:/volume-88eb67d0",
    );
    expect(sfsMountTarget({ mountCommand: "sudo mount -t nfs -o nconnect=16 nfs.fin-01.datacrunch.io:/SFS-Model-Vault-22-Jan-01-4xR2NHBi-f8d2ff3a /mnt/sfs" }, "FIN-01")).toBe(
      "nfs.fin-01.datacrunch.io:/SFS-Model-Vault-22-Jan-01-4xR2NHBi-f8d2ff3a",
    );
  });

  it("falls back to the NFS target, then to the pseudo path in the location's NFS host", () => {
    expect(sfsMountTarget({ target: "nfs.fin-03.datacrunch.io:/volume-1" }, "FIN-03")).toBe("nfs.fin-03.datacrunch.io:/volume-1");
    expect(sfsMountTarget({ pseudoPath: "volume-2" }, "FIN-03")).toBe("nfs.fin-03.datacrunch.io:/volume-2");
  });

  it("fails clearly when the API gave nothing to mount", () => {
    expect(() => sfsMountTarget({ target: "vdb" }, "FIN-01")).toThrow(/no mount command, NFS target or pseudo path/);
  });
});

describe("script command lines", () => {
  it("wraps each script in timeout, quotes every value and closes stdin unless the script reads secrets", () => {
    expect(scriptCommand({ scriptsDir: "/opt/c", script: "mount-sfs.sh", args: [["--target", "h:/p q"], "--no-fstab"], timeoutSeconds: 60 })).toBe(
      "timeout -k 30 60 bash '/opt/c/host/mount-sfs.sh' --target 'h:/p q' --no-fstab </dev/null",
    );
    expect(scriptCommand({ scriptsDir: "/opt/c", script: "seed-sfs.sh", timeoutSeconds: 9, env: { COMFYUME_ROOT: "/tmp/r" }, readsStdin: true })).toBe(
      "timeout -k 30 9 env COMFYUME_ROOT='/tmp/r' bash '/opt/c/host/seed-sfs.sh'",
    );
    expect(shellQuote("it's")).toBe("'it'\\''s'");
    expect(chain(["a", "b"])).toBe("set -e\na\nb");
  });

  it("gives each RemoteCommand a deadline past every script's own timeout and kill grace", () => {
    expect(commandDeadline(600)).toBe(600 + 30 + 60);
    expect(commandDeadline(600, 21600)).toBe(600 + 30 + 21600 + 30 + 60);
  });
});

describe("host script uploads", () => {
  it("maps the named scripts and every shared lib file to remote paths, with the repository's content", () => {
    const files = hostScriptFiles(LOCAL_SCRIPTS_DIR, "/opt/c", ["mount-sfs.sh"]);
    const paths = Object.keys(files);
    expect(paths[0]).toBe("/opt/c/host/mount-sfs.sh");
    expect(paths).toContain("/opt/c/lib/common.sh");
    expect(paths.slice(1).every((p) => p.startsWith("/opt/c/lib/") && p.endsWith(".sh"))).toBe(true);
    expect(files["/opt/c/host/mount-sfs.sh"]).toMatch(/^#!/);
  });

  it("names a missing script instead of uploading a partial set", () => {
    expect(() => hostScriptFiles(LOCAL_SCRIPTS_DIR, "/opt/c", ["nope.sh"])).toThrow(/missing host script\(s\) nope\.sh/);
  });
});

describe("host identity", () => {
  it("keeps dialing a booting host for the configured wait at first contact, never less than other connections", () => {
    // Refused dials back off up to 8 s each: 600 s of waiting takes at least 75 attempts.
    expect(firstContactDialLimit(600, 40)).toBe(75);
    expect(firstContactDialLimit(60, 40)).toBe(40);
  });

  it("builds an ASCII first-boot script that restores the identity from the SFS cache", () => {
    const script = firstBootScript({ sfsMountTarget: "nfs.fin-01.datacrunch.io:/v-1", sfsMount: "/mnt/sfs", backupSet: "worker" });
    expect(script).toMatch(/^#!\/bin\/bash\n/);
    expect(script).toMatch(/^[\x00-\x7f]*$/);
    // `latest` is a file naming the snapshot (backup-instance.sh), never a directory to read from.
    expect(script).toContain("set_dir='/mnt/sfs/cache/backups/worker'");
    expect(script).toContain('stamp=$(head -n 1 "$set_dir/latest")');
    expect(script).toContain('archive="$snap/ssh-host-keys.tar.gz"');
    expect(script).not.toContain("latest/");
    expect(script).toContain("set -euo pipefail");
    expect(script).toContain("install -m 600");
  });
});

describe("mello and backups helpers", () => {
  it("opens exactly SSH, HTTP, HTTPS and Tailscale", () => {
    expect(melloFirewallRules(["10.0.0.1/32"]).map((r) => `${r.protocol}/${r.port}`)).toEqual(["tcp/22", "tcp/80", "tcp/443", "udp/41641"]);
  });

  it("derives R2 endpoints, token resources and S3 secrets", () => {
    expect(r2Endpoint("abc", "eu")).toBe("https://abc.eu.r2.cloudflarestorage.com");
    expect(r2Endpoint("abc", "default")).toBe("https://abc.r2.cloudflarestorage.com");
    expect(bucketResources("abc", "eu", ["b1"])).toEqual({ "com.cloudflare.edge.r2.bucket.abc_eu_b1": "*" });
    expect(s3SecretFromTokenValue("value")).toBe("cd42404d52ad55ccfa9aca4adc828aa5800ad9d385a0671fbcbf724118320619");
  });
});
