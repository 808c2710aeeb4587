// A real S3 endpoint on loopback standing in for R2 in the host-script tests (s3rver).
// Usage: node s3-server.mjs DIR BUCKETS(comma) ACCESS_KEY_ID SECRET EVENTS_FILE
// Prints "PORT <n>" once listening. Every object write/delete is appended to EVENTS_FILE
// as a JSON line: that request log is how tests count the bytes a backup really sent.
import { appendFileSync } from "node:fs";
import S3rver from "s3rver";
import Account from "s3rver/lib/models/account.js";

const [dir, buckets, keyId, secret, eventsFile] = process.argv.slice(2);
// Replace the built-in dummy key so a wrong secret is really rejected by signature checks.
Account.DUMMY_ACCOUNT.revokeAccessKey("S3RVER");
Account.DUMMY_ACCOUNT.createKeyPair(keyId, secret);

const server = new S3rver({
  address: "127.0.0.1",
  port: 0,
  silent: true,
  directory: dir,
  configureBuckets: buckets.split(",").map((name) => ({ name })),
});
server.on("event", (e) => {
  const r = e.Records[0];
  appendFileSync(
    eventsFile,
    JSON.stringify({ event: r.eventName, bucket: r.s3.bucket?.name, key: r.s3.object.key, size: r.s3.object.size ?? 0 }) + "\n",
  );
});
const { port } = await server.run();
process.stdout.write(`PORT ${port}\n`);
const stop = async () => {
  await server.close();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
