// A failed backup hook must say why: RemoteCommand failure messages carry the last lines of the script's stderr
// even with logging "none" (the hooks' setting, because they receive secrets on stdin), after redaction: no value
// from stdin (KEY=VALUE lines, quoted values, every line of a multi-line secret) and no private-key material may
// reach the message. A delete that cannot reach its host points to the rescue, never to `pulumi state delete`.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RemoteCommandInputs, remoteCommandProvider as provider } from "../../infra/remote/command";
import { secretFragments } from "../../infra/remote/output";
import type { SshHost } from "../support/ssh-host";
import { clientKey, connectionTo, privateKeyBody, startHost } from "./fixtures";

let host: SshHost;
beforeAll(async () => {
  host = await startHost();
});
afterAll(() => host.close());

const R2_KEY_ID = "AKIAfailureMessage4711";
const R2_SECRET = "s3cr3t/with+chars==end";
const QUOTED = "quoted value with spaces 99";
const PEM_LINES = ["b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ", "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0MTIzNDU2"];
const STDIN = [
  `R2_ACCESS_KEY_ID=${R2_KEY_ID}`,
  `export R2_SECRET_ACCESS_KEY=${R2_SECRET}`,
  `LABEL="${QUOTED}"`,
  "-----BEGIN OPENSSH PRIVATE KEY-----",
  ...PEM_LINES,
  "-----END OPENSSH PRIVATE KEY-----",
  "",
].join("\n");
const SECRET_VALUES = [R2_KEY_ID, R2_SECRET, QUOTED, ...PEM_LINES, privateKeyBody().slice(0, 40)];

/** A backup-like script that leaks its stdin (and the connection key) to stderr before failing with its cause. */
const LEAKY_FAILURE = [
  "secrets=$(cat)",
  `printf 'env: %s\\n' "$secrets" >&2`,
  "echo \"R2_SECRET_ACCESS_KEY is ${secrets##*R2_SECRET_ACCESS_KEY=}\" >&2",
  "echo 'backup-to-r2: R2 unreachable: could not connect to https://r2.example (exit 6); check the endpoint and retry' >&2",
  "exit 6",
].join("; ");

async function failureOf(work: Promise<unknown>): Promise<string> {
  const error = await work.then(() => undefined, (caught: unknown) => caught as Error);
  expect(error, "expected the operation to fail").toBeInstanceOf(Error);
  return (error as Error).message;
}

function inputs(extra: Partial<RemoteCommandInputs>): RemoteCommandInputs {
  return { connection: connectionTo(host), stdin: STDIN, logging: "none", ...extra };
}

describe('failure messages with logging "none"', () => {
  it("a failed delete (backup hook) shows the redacted stderr tail with its cause", async () => {
    const state = { ...inputs({ delete: LEAKY_FAILURE }), stdout: "", stderr: "", presentedHostKey: "" };
    const message = await failureOf(provider.delete!("id", state));
    expect(message).toMatch(/^remote delete command on 127\.0\.0\.1 exited with code 6\n--- last lines of stderr ---\n/);
    expect(message).toContain("backup-to-r2: R2 unreachable: could not connect to https://r2.example (exit 6); check the endpoint and retry");
    expect(message).toContain("[redacted]");
    for (const secret of SECRET_VALUES) expect(message).not.toContain(secret);
  });

  it("a failed create shows it too, and a script that prints the connection's private key is redacted", async () => {
    const message = await failureOf(provider.create(inputs({ create: `printf '%s\\n' ${JSON.stringify(clientKey.privateKey)} >&2; echo 'set empty: /mnt/sfs/models has no files' >&2; exit 3` })));
    expect(message).toContain("exited with code 3");
    expect(message).toContain("set empty: /mnt/sfs/models has no files");
    for (const secret of SECRET_VALUES) expect(message).not.toContain(secret);
  });

  it("every line of a multi-line secret and every KEY=VALUE value is a redaction fragment", () => {
    const fragments = secretFragments(STDIN);
    for (const secret of [R2_KEY_ID, R2_SECRET, QUOTED, ...PEM_LINES]) expect(fragments).toContain(secret);
  });
});

describe("a delete that cannot reach its host", () => {
  it("keeps the resource and points to the rescue, not to `pulumi state delete`", async () => {
    const state = {
      connection: { ...connectionTo(host), port: 1, dialErrorLimit: 1 }, delete: "echo backup", stdout: "", stderr: "", presentedHostKey: "",
    };
    const message = await failureOf(provider.delete!("id", state));
    expect(message).toMatch(/^remote delete command on 127\.0\.0\.1: could not connect to root@127\.0\.0\.1:1 after 1 attempt\(s\)/);
    expect(message).toContain("npm run rescue -- --stack <stack>");
    expect(message).toContain("docs/rescue.md");
    // The rescue handles a deleted instance's scratch; a hook on the month's app host needs the host back.
    expect(message).toMatch(/the month's app host .*start it again .*then run the destroy again/);
    expect(message).not.toContain("state delete");
  });
});
