// The dynamic providers' serialized code is cached per version of the code (infra/provider-code-cache.ts):
// a cached text must be byte for byte what the SDK would serialize, any code edit must miss the cache, and
// nothing that holds a secret or is not a named export of the repository's code may be cached.
import * as pulumi from "@pulumi/pulumi";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { cachingSerializer, codeFingerprint, installProviderCodeCache, providerName, type SerializeFunction } from "../../infra/provider-code-cache";
import { startupScriptProvider } from "../../infra/providers/startup-script";
import { fileSecretProvider, secretProvider } from "../../infra/providers/secret";

const REPO = path.resolve(__dirname, "../..");
const dirs: string[] = [];
const tempDir = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "provider-code-"));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** The SDK's own serializer, counting its calls. */
function countingSdk(): { serialize: SerializeFunction; calls: () => number } {
  let calls = 0;
  return {
    serialize: (func, args) => {
      calls += 1;
      return pulumi.runtime.serializeFunction(func, args);
    },
    calls: () => calls,
  };
}

const names = new Map<unknown, string>([
  [startupScriptProvider, "infra/providers/startup-script.ts#startupScriptProvider"],
  [secretProvider, "infra/providers/secret.ts#secretProvider"],
  [fileSecretProvider, "infra/providers/secret.ts#fileSecretProvider"],
]);

describe("the provider code cache", () => {
  it("gives, from the cache, byte for byte the text the SDK serializes, and serializes each provider once per code version", async () => {
    const dir = tempDir();
    const sdk = countingSdk();
    const options = { dir, fingerprint: () => "f1", name: (p: unknown) => names.get(p) };
    const fresh = await pulumi.runtime.serializeFunction(() => startupScriptProvider, { allowSecrets: true });

    const cold = await cachingSerializer(sdk.serialize, options)(() => startupScriptProvider, { allowSecrets: true });
    expect(sdk.calls()).toBe(1);
    // A new program run (a new serializer over the same directory): no serialization, the same text.
    const warm = await cachingSerializer(sdk.serialize, options)(() => startupScriptProvider, { allowSecrets: true });
    expect(sdk.calls()).toBe(1);
    expect(cold.text).toBe(fresh.text);
    expect(warm).toEqual({ text: fresh.text, containsSecrets: false });

    // Another code version: serialized again, and the old version's entries go.
    await cachingSerializer(sdk.serialize, { ...options, fingerprint: () => "f2" })(() => startupScriptProvider, { allowSecrets: true });
    expect(sdk.calls()).toBe(2);
    expect(fs.readdirSync(dir).every((f) => f.startsWith("f2-"))).toBe(true);
  });

  it("keeps two providers made by one factory apart (same method sources, different captured values)", async () => {
    const dir = tempDir();
    const options = { dir, fingerprint: () => "f1", name: (p: unknown) => names.get(p) };
    const sdk = countingSdk();
    await cachingSerializer(sdk.serialize, options)(() => secretProvider, { allowSecrets: true });
    await cachingSerializer(sdk.serialize, options)(() => fileSecretProvider, { allowSecrets: true });
    const serialize = cachingSerializer(sdk.serialize, options);
    const [secret, file] = [await serialize(() => secretProvider, { allowSecrets: true }), await serialize(() => fileSecretProvider, { allowSecrets: true })];
    expect(sdk.calls()).toBe(2);
    expect(secret.text).toBe((await pulumi.runtime.serializeFunction(() => secretProvider, { allowSecrets: true })).text);
    expect(file.text).toBe((await pulumi.runtime.serializeFunction(() => fileSecretProvider, { allowSecrets: true })).text);
    expect(secret.text).not.toBe(file.text);
  });

  it("never caches a closure that holds a secret, a provider that is not a named export, or another kind of function", async () => {
    const dir = tempDir();
    let calls = 0;
    const inner: SerializeFunction = async () => ({ text: `code ${++calls}`, containsSecrets: calls === 1 });
    const serialize = cachingSerializer(inner, { dir, fingerprint: () => "f1", name: (p: unknown) => (p === startupScriptProvider ? "x#p" : undefined) });
    expect(await serialize(() => startupScriptProvider, { allowSecrets: true })).toEqual({ text: "code 1", containsSecrets: true });
    expect(fs.existsSync(dir) ? fs.readdirSync(dir) : []).toEqual([]);
    const madeOnTheFly = { create: async () => ({ id: "x" }) };
    await serialize(() => madeOnTheFly, { allowSecrets: true });
    await serialize(() => madeOnTheFly, { allowSecrets: true });
    await serialize(() => startupScriptProvider, {});
    expect(calls).toBe(4);
    expect(fs.existsSync(dir) ? fs.readdirSync(dir) : []).toEqual([]);
  });

  it("names a provider by the repository module that exports it, and nothing outside infra/ and components/", () => {
    const root = "/repo";
    const provider = { create: () => undefined };
    const modules = {
      a: { filename: "/repo/node_modules/x/index.js", exports: { provider } },
      b: { filename: "/repo/infra/providers/thing.ts", exports: { other: 1, thingProvider: provider } },
    } as unknown as NodeJS.Dict<NodeModule>;
    expect(providerName(provider, root, modules)).toBe("infra/providers/thing.ts#thingProvider");
    expect(providerName({ create: () => undefined }, root, modules)).toBeUndefined();
    expect(providerName(provider, root, { a: modules.a })).toBeUndefined();
    // A module still loading (its export getters throw) is skipped, not fatal.
    const loading = { filename: "/repo/infra/loading.ts", exports: Object.defineProperty({}, "x", { enumerable: true, get: () => { throw new ReferenceError("x is not initialized"); } }) };
    expect(providerName(provider, root, { loading, b: modules.b } as unknown as NodeJS.Dict<NodeModule>)).toBe("infra/providers/thing.ts#thingProvider");
  });

  it("names every dynamic provider of the repository without require.cache, as in the bundle `pulumi up` starts", async () => {
    // Every export of infra/ and components/ that is a dynamic provider, with the names it is exported under.
    const exportedAs = new Map<object, string[]>();
    const files = (dir: string): string[] =>
      fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : e.name.endsWith(".ts") ? [path.join(dir, e.name)] : []));
    for (const file of [...files(path.join(REPO, "infra")), ...files(path.join(REPO, "components"))]) {
      const mod = (await import(file)) as Record<string, unknown>;
      for (const [name, value] of Object.entries(mod)) {
        const isProvider = !!value && typeof value === "object" && typeof (value as { create?: unknown }).create === "function" && typeof (value as { diff?: unknown }).diff === "function";
        if (isProvider) exportedAs.set(value as object, [...(exportedAs.get(value as object) ?? []), `${path.relative(REPO, file)}#${name}`]);
      }
    }
    expect(exportedAs.size).toBeGreaterThanOrEqual(12);
    for (const [provider, exported] of exportedAs) expect(exported, `providerName(${exported[0]}) with no module to scan`).toContain(providerName(provider, REPO, {}));
  }, 60_000);

  it("changes the fingerprint with any edit to the code the providers are built from", () => {
    const root = tempDir();
    fs.mkdirSync(path.join(root, "infra/providers"), { recursive: true });
    fs.mkdirSync(path.join(root, "components"), { recursive: true });
    fs.writeFileSync(path.join(root, "infra/providers/a.ts"), "export const a = 1;\n");
    fs.writeFileSync(path.join(root, "components/b.ts"), "export const b = 1;\n");
    fs.writeFileSync(path.join(root, "package-lock.json"), "{}\n");
    const first = codeFingerprint(root, "3.0.0");
    expect(codeFingerprint(root, "3.0.0")).toBe(first);
    fs.writeFileSync(path.join(root, "components/b.ts"), "export const b = 2;\n");
    const second = codeFingerprint(root, "3.0.0");
    expect(second).not.toBe(first);
    fs.writeFileSync(path.join(root, "infra/providers/new.ts"), "\n");
    expect(codeFingerprint(root, "3.0.0")).not.toBe(second);
    fs.writeFileSync(path.join(root, "package-lock.json"), "{\"v\":2}\n");
    expect(codeFingerprint(root, "3.0.0")).not.toBe(second);
    expect(codeFingerprint(root, "3.0.1")).not.toBe(codeFingerprint(root, "3.0.0"));
  });

  it("is installed into the serializer the SDK's dynamic resources call, once, and can be turned off", () => {
    const closure = require("@pulumi/pulumi/runtime/closure/serializeClosure") as { serializeFunction: SerializeFunction };
    const original = closure.serializeFunction;
    try {
      process.env.COMFYUME_PROVIDER_CODE_CACHE = "off";
      expect(installProviderCodeCache(tempDir())).toBe(false);
      expect(closure.serializeFunction).toBe(original);
      delete process.env.COMFYUME_PROVIDER_CODE_CACHE;
      expect(installProviderCodeCache(tempDir())).toBe(true);
      const installed = closure.serializeFunction;
      expect(installed).not.toBe(original);
      expect(installProviderCodeCache(tempDir())).toBe(true);
      expect(closure.serializeFunction).toBe(installed);
    } finally {
      closure.serializeFunction = original;
      delete process.env.COMFYUME_PROVIDER_CODE_CACHE;
    }
  });
});
