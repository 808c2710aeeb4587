// The S3 endpoint standing in for R2 behaves like R2 where the backups depend on it: listings page
// past 1,000 keys, folder-style listings show nested prefixes, multipart uploads get R2's ETag
// ("<MD5 of the parts' MD5s>-<parts>"), streaming (aws-chunked) uploads are stored decoded, a wrong
// secret fails the signature check; and the test seams ("R2 lying", out-of-band delete) act on it.
import { spawn } from "node:child_process";
import { connect } from "node:net";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLocalS3, type LocalS3 } from "../../sim/local-cloud/s3";
import { objectPath, s3PutStreaming, s3Request } from "../support/s3-request";

let s3: LocalS3;
let work: string;
let bucket: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "s3-endpoint-test-"));
  mkdirSync(join(work, "server"));
  s3 = await startLocalS3(join(work, "server"), { host: "127.0.101.1" });
  bucket = s3.buckets.models;
});
afterAll(async () => {
  await s3?.close();
  rmSync(work, { recursive: true, force: true });
});

const md5 = (b: Buffer) => createHash("md5").update(b).digest();

function rclone(args: string[], secret = s3.secretAccessKey): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: process.env.HOME ?? "/root",
    RCLONE_CONFIG: "/dev/null",
    RCLONE_CONFIG_R2_TYPE: "s3",
    RCLONE_CONFIG_R2_PROVIDER: "Cloudflare",
    RCLONE_CONFIG_R2_REGION: "auto",
    RCLONE_CONFIG_R2_ENDPOINT: s3.endpoint,
    RCLONE_CONFIG_R2_ACCESS_KEY_ID: s3.accessKeyId,
    RCLONE_CONFIG_R2_SECRET_ACCESS_KEY: secret,
    RCLONE_CONFIG_R2_NO_CHECK_BUCKET: "true",
    RCLONE_RETRIES: "1",
    RCLONE_LOW_LEVEL_RETRIES: "1",
  };
  return new Promise((resolve, reject) => {
    const child = spawn("rclone", args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

async function mustRclone(args: string[]): Promise<string> {
  const r = await rclone(args);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

const lines = (text: string) => text.split("\n").filter(Boolean);

/** ETags and sizes of a prefix's objects, as the ListObjectsV2 XML reports them. */
async function listed(prefix: string): Promise<Map<string, { etag: string; size: number }>> {
  const r = await s3Request(s3, "GET", objectPath(bucket), { "list-type": "2", prefix });
  expect(r.status, r.body.toString()).toBe(200);
  const out = new Map<string, { etag: string; size: number }>();
  for (const m of r.body.toString().matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
    const field = (name: string) => new RegExp(`<${name}>([^<]*)</${name}>`).exec(m[1]!)?.[1] ?? "";
    out.set(field("Key"), { etag: field("ETag").replace(/&#34;|&quot;/g, '"'), size: Number(field("Size")) });
  }
  return out;
}

describe("local cloud: the S3 endpoint standing in for R2", () => {
  it("lists all 1,500 keys of a prefix through rclone lsf and lsjson (pages past 1,000)", async () => {
    const src = join(work, "many");
    mkdirSync(src);
    for (let i = 0; i < 1500; i++) writeFileSync(join(src, `k${String(i).padStart(4, "0")}`), `${i}\n`);
    await mustRclone(["copy", "--transfers", "16", src, `r2:${bucket}/many`]);
    expect(lines(await mustRclone(["lsf", "--files-only", `r2:${bucket}/many`]))).toHaveLength(1500);
    const json = JSON.parse(await mustRclone(["lsjson", "-R", "--files-only", `r2:${bucket}/many`])) as { Path: string }[];
    expect(new Set(json.map((e) => e.Path)).size).toBe(1500);
  }, 180_000);

  it("shows nested prefixes in folder-style listings (delimiter) when one holds over 1,000 keys, and copies the whole tree", async () => {
    const nested = s3.buckets.cache; // a bucket of its own: its root listing holds only this tree
    const src = join(work, "nest");
    mkdirSync(join(src, "top/a/b"), { recursive: true });
    mkdirSync(join(src, "top/c"), { recursive: true });
    for (let i = 0; i < 1010; i++) writeFileSync(join(src, `top/a/b/k${String(i).padStart(4, "0")}`), `${i}\n`);
    writeFileSync(join(src, "top/a/d.txt"), "d");
    writeFileSync(join(src, "top/c/x.txt"), "x");
    writeFileSync(join(src, "top/e.txt"), "e");
    await mustRclone(["copy", "--transfers", "16", src, `r2:${nested}`]);
    expect(lines(await mustRclone(["lsf", `r2:${nested}`]))).toEqual(["top/"]);
    expect(lines(await mustRclone(["lsf", `r2:${nested}/top`])).sort()).toEqual(["a/", "c/", "e.txt"]);
    expect(lines(await mustRclone(["lsf", `r2:${nested}/top/a`])).sort()).toEqual(["b/", "d.txt"]);
    expect(lines(await mustRclone(["lsf", `r2:${nested}/top/a/b`]))).toHaveLength(1010);
    const back = join(work, "nest-back");
    await mustRclone(["copy", "--transfers", "16", `r2:${nested}`, back]);
    expect(lines(await mustRclone(["lsf", "-R", "--files-only", back]))).toHaveLength(1013);
  }, 180_000);

  it("gives a multipart upload R2's ETag: the MD5 of the parts' MD5s, then -<parts>", async () => {
    const part = 5 * 1024 * 1024;
    const data = randomBytes(2 * part + 12345);
    writeFileSync(join(work, "big.bin"), data);
    await mustRclone(["copyto", "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", join(work, "big.bin"), `r2:${bucket}/mp/big.bin`]);
    const parts = [0, 1, 2].map((i) => data.subarray(i * part, (i + 1) * part));
    const want = `"${md5(Buffer.concat(parts.map(md5))).toString("hex")}-3"`;
    const head = await s3Request(s3, "HEAD", objectPath(bucket, "mp/big.bin"));
    expect(head.status).toBe(200);
    expect(head.headers.etag).toBe(want);
    expect((await listed("mp/")).get("mp/big.bin")).toEqual({ etag: want, size: data.length });
    expect(s3.events().filter((e) => e.key === "mp/big.bin" && e.event.startsWith("ObjectCreated")).map((e) => e.size)).toEqual([data.length]);
  });

  it("stores a streaming (aws-chunked, chunk-signed) upload decoded", async () => {
    const data = randomBytes(200_000);
    const put = await s3PutStreaming(s3, bucket, "chunked/blob.bin", data, 64 * 1024);
    expect(put.status, put.body.toString()).toBe(200);
    expect(put.headers.etag).toBe(`"${md5(data).toString("hex")}"`);
    const get = await s3Request(s3, "GET", objectPath(bucket, "chunked/blob.bin"));
    expect(get.body.length).toBe(data.length);
    expect(get.body.equals(data)).toBe(true);
    expect((await listed("chunked/")).get("chunked/blob.bin")?.size).toBe(data.length);
  });

  it("refuses a request signed with the wrong secret (signature check), and one with an unknown key id", async () => {
    const wrong = await rclone(["lsf", `r2:${bucket}`], randomBytes(32).toString("hex"));
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toContain("SignatureDoesNotMatch");
    const reply = await s3Request({ ...s3, accessKeyId: randomBytes(16).toString("hex") }, "GET", objectPath(bucket), { "list-type": "2" });
    // R2 answers 403 InvalidAccessKeyId; versitygw 404 XAdminUserNotFound: refused either way.
    expect(reply.status, reply.body.toString()).toBeGreaterThanOrEqual(400);
    expect(reply.status).toBeLessThan(500);
    expect((await s3Request(s3, "GET", objectPath(bucket), { "list-type": "2", "max-keys": "1" })).status).toBe(200);
  });

  it("answers rclone's \"Expect: 100-Continue\" (capital C) with 100 Continue before the body, as R2 does", async () => {
    // rclone (aws-sdk-go) sends it on every upload over 2 MB and, without the answer, holds the body back 1 s.
    const { hostname, port } = new URL(s3.endpoint);
    const first = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), hostname, () =>
        socket.write(`PUT /${bucket}/expect/probe.bin HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Length: 3000000\r\nExpect: 100-Continue\r\n\r\n`),
      );
      const timer = setTimeout(() => (socket.destroy(), resolve("(nothing within 5 s)")), 5_000);
      socket.once("data", (d: Buffer) => (clearTimeout(timer), socket.destroy(), resolve(d.toString().split("\r\n")[0]!)));
      socket.on("error", reject);
    });
    expect(first).toBe("HTTP/1.1 100 Continue");
  });

  it("has its four R2 buckets from the start", async () => {
    expect(lines(await mustRclone(["lsd", "r2:"])).map((l) => l.trim().split(/\s+/).pop()).sort()).toEqual(Object.values(s3.buckets).sort());
  });

  it("corruptObject alters the stored bytes while the listing keeps the size and ETag (R2 lying); removeObject deletes out of band", async () => {
    const data = randomBytes(50_000);
    writeFileSync(join(work, "victim.bin"), data);
    await mustRclone(["copyto", join(work, "victim.bin"), `r2:${bucket}/lying/victim.bin`]);
    const before = (await listed("lying/")).get("lying/victim.bin");
    expect(before).toEqual({ etag: `"${md5(data).toString("hex")}"`, size: data.length });

    s3.corruptObject(bucket, "lying/victim.bin");
    expect((await listed("lying/")).get("lying/victim.bin")).toEqual(before);
    const flipped = (await s3Request(s3, "GET", objectPath(bucket, "lying/victim.bin"))).body;
    expect(flipped.length).toBe(data.length);
    expect(flipped.equals(data)).toBe(false);
    expect(flipped.subarray(64).equals(data.subarray(64))).toBe(true);

    s3.corruptObject(bucket, "lying/victim.bin", Buffer.from("CORRUPTED-IN-R2"));
    const written = (await s3Request(s3, "GET", objectPath(bucket, "lying/victim.bin"))).body;
    expect(written.subarray(0, 15).toString()).toBe("CORRUPTED-IN-R2");
    expect(written.length).toBe(data.length);
    expect(() => s3.corruptObject(bucket, "lying/victim.bin", Buffer.alloc(data.length + 1))).toThrow(/longer than the object/);

    const deletesBefore = s3.events().filter((e) => e.event.startsWith("ObjectRemoved")).length;
    s3.removeObject(bucket, "lying/victim.bin");
    expect(lines(await mustRclone(["lsf", "-R", `r2:${bucket}/lying`]))).toEqual([]);
    expect((await s3Request(s3, "HEAD", objectPath(bucket, "lying/victim.bin"))).status).toBe(404);
    expect(s3.events().filter((e) => e.event.startsWith("ObjectRemoved"))).toHaveLength(deletesBefore);
  });

  it("logs object writes and deletes with their sizes, in order", async () => {
    const since = s3.events().length;
    writeFileSync(join(work, "ev.bin"), randomBytes(1234));
    await mustRclone(["copyto", join(work, "ev.bin"), `r2:${bucket}/ev/one.bin`]);
    await mustRclone(["deletefile", `r2:${bucket}/ev/one.bin`]);
    const seen = s3.events().slice(since).filter((e) => e.key === "ev/one.bin");
    expect(seen.map((e) => [e.event.split(":")[0], e.bucket, e.size])).toEqual([
      ["ObjectCreated", bucket, 1234],
      ["ObjectRemoved", bucket, 0],
    ]);
  });
});
