// Raw S3 requests signed with AWS Signature V4, for tests that must see what a client like rclone
// hides: the ETag header and listing XML as the server sends them, and uploads in the streaming
// (aws-chunked) form that SDKs such as minio-go (restic) use over plain HTTP.
import { createHash, createHmac } from "node:crypto";
import { request } from "node:http";

export interface S3Credentials {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export interface S3Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

const REGION = "auto"; // what R2 clients sign with
const sha256Hex = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");
const hmac = (key: Buffer | string, text: string) => createHmac("sha256", key).update(text).digest();
const rfc3986 = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

interface Signed {
  headers: Record<string, string>;
  signature: string;
  signingKey: Buffer;
  scope: string;
  amzDate: string;
}

function signRequest(creds: S3Credentials, method: string, path: string, query: Record<string, string>, headers: Record<string, string>, payloadHash: string): Signed {
  const amzDate = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
  const day = amzDate.slice(0, 8);
  const all: Record<string, string> = { ...headers, host: new URL(creds.endpoint).host, "x-amz-date": amzDate, "x-amz-content-sha256": payloadHash };
  const names = Object.keys(all).map((n) => n.toLowerCase()).sort();
  const lower = Object.fromEntries(Object.entries(all).map(([k, v]) => [k.toLowerCase(), v.trim()]));
  const canonicalQuery = Object.keys(query).sort().map((k) => `${rfc3986(k)}=${rfc3986(query[k]!)}`).join("&");
  const canonical = [method, path, canonicalQuery, names.map((n) => `${n}:${lower[n]}\n`).join(""), names.join(";"), payloadHash].join("\n");
  const scope = `${day}/${REGION}/s3/aws4_request`;
  const signingKey = hmac(hmac(hmac(hmac(`AWS4${creds.secretAccessKey}`, day), REGION), "s3"), "aws4_request");
  const signature = hmac(signingKey, ["AWS4-HMAC-SHA256", amzDate, scope, sha256Hex(canonical)].join("\n")).toString("hex");
  all.authorization = `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${scope}, SignedHeaders=${names.join(";")}, Signature=${signature}`;
  return { headers: all, signature, signingKey, scope, amzDate };
}

function send(creds: S3Credentials, method: string, path: string, query: Record<string, string>, headers: Record<string, string>, body?: Buffer): Promise<S3Reply> {
  const url = new URL(creds.endpoint);
  const search = Object.keys(query).length ? `?${Object.entries(query).map(([k, v]) => `${rfc3986(k)}=${rfc3986(v)}`).join("&")}` : "";
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method, path: path + search, headers, timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (d: Buffer) => chunks.push(d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on("timeout", () => req.destroy(new Error(`${method} ${path}: no answer in 30 s`)));
    req.on("error", reject);
    req.end(body);
  });
}

/** Path-style object path, each segment encoded as SigV4 wants. */
export const objectPath = (bucket: string, key = "") => `/${bucket}${key ? `/${key.split("/").map(rfc3986).join("/")}` : ""}`;

/** One signed request with the whole payload hashed (a HEAD, a listing, a small PUT). */
export function s3Request(creds: S3Credentials, method: string, path: string, query: Record<string, string> = {}, body?: Buffer): Promise<S3Reply> {
  const headers: Record<string, string> = body ? { "content-length": String(body.length) } : {};
  const signed = signRequest(creds, method, path, query, headers, sha256Hex(body ?? ""));
  return send(creds, method, path, query, signed.headers, body);
}

/**
 * A PUT in the streaming form (Content-Encoding: aws-chunked, STREAMING-AWS4-HMAC-SHA256-PAYLOAD):
 * the body goes as chunks, each framed with its size and its own signature chained to the last.
 */
export function s3PutStreaming(creds: S3Credentials, bucket: string, key: string, data: Buffer, chunkSize = 64 * 1024): Promise<S3Reply> {
  const chunks: Buffer[] = [];
  for (let at = 0; at < data.length; at += chunkSize) chunks.push(data.subarray(at, at + chunkSize));
  chunks.push(Buffer.alloc(0));
  const frameLength = (n: number) => n.toString(16).length + ";chunk-signature=".length + 64 + 2 + n + 2;
  const encodedLength = chunks.reduce((sum, c) => sum + frameLength(c.length), 0);
  const path = objectPath(bucket, key);
  const signed = signRequest(
    creds,
    "PUT",
    path,
    {},
    { "content-encoding": "aws-chunked", "content-length": String(encodedLength), "x-amz-decoded-content-length": String(data.length) },
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
  );
  let previous = signed.signature;
  const framed = chunks.map((chunk) => {
    const text = ["AWS4-HMAC-SHA256-PAYLOAD", signed.amzDate, signed.scope, previous, sha256Hex(""), sha256Hex(chunk)].join("\n");
    previous = hmac(signed.signingKey, text).toString("hex");
    return Buffer.concat([Buffer.from(`${chunk.length.toString(16)};chunk-signature=${previous}\r\n`), chunk, Buffer.from("\r\n")]);
  });
  return send(creds, "PUT", path, {}, signed.headers, Buffer.concat(framed));
}
