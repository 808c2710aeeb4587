// Host key parsing and fingerprints: the forms people paste into `connection.hostKey`.
import { describe, expect, it } from "vitest";
import { authorizedKeyFromBlob, fingerprintSha256, parseAuthorizedKey } from "../../infra/remote/hostkey";
import { generateKeyPair } from "../support/ssh-host";

describe("host keys", () => {
  const { publicKey } = generateKeyPair();

  it("round-trips an authorized_keys line, ignoring a comment", () => {
    const parsed = parseAuthorizedKey(`${publicKey} root@host`);
    if (typeof parsed === "string") throw new Error(parsed);
    expect(parsed.type).toBe("ssh-ed25519");
    expect(authorizedKeyFromBlob(parsed.blob)).toBe(publicKey);
    expect(fingerprintSha256(parsed.blob)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  it("explains the usual paste mistakes", () => {
    const [type, base64] = publicKey.split(" ");
    expect(parseAuthorizedKey(`10.0.0.5 ${publicKey}`)).toMatch(/known_hosts line/);
    expect(parseAuthorizedKey(base64)).toMatch(/authorized_keys format/);
    expect(parseAuthorizedKey(`ssh-rsa ${base64}`)).toBe('the key says "ssh-rsa" but its blob holds a "ssh-ed25519" key');
    expect(parseAuthorizedKey(`${type} ${base64.slice(0, 20)}`)).toBe("the key blob is malformed");
  });
});
