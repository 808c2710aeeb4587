// The dynamic providers' code, serialized once per version of the code instead of in every program run.
//
// Every dynamic resource stores its provider's code in the state (`__provider`), and the SDK serializes that
// code anew in each program run by walking the closures: 1-4 s per provider on this machine under load,
// on the event loop, before the first resource can be registered — and `up` runs the program twice. The text
// depends only on the code, so it is kept in <repo>/.comfyume/provider-code/ under a fingerprint of every
// file the providers are built from (infra/, components/, the lock file, tsconfig, Node and SDK versions) and
// the provider's module and export name. Any edit to those files changes the fingerprint: a stale text is
// never used. Only named exports of the repository's own modules are cached (a provider made on the fly,
// or one whose closure holds a secret, is serialized as before); COMFYUME_PROVIDER_CODE_CACHE=off turns it off.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO_ROOT } from "./repo-root";

export interface SerializedFunction {
  text: string;
  containsSecrets: boolean;
}
export type SerializeFunction = (func: () => unknown, args?: Record<string, unknown>) => Promise<SerializedFunction>;

/** What a provider's serialized code can be built from (production code never imports sim/ or test/). */
const CODE_DIRS = ["infra", "components"];
const CODE_FILES = ["package-lock.json", "tsconfig.json"];
const MARK = Symbol.for("comfyume.providerCodeCache");

function listFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((e) => (e.isDirectory() ? listFiles(path.join(dir, e.name)) : e.isFile() ? [path.join(dir, e.name)] : []));
}

/** A hash of every file the providers' code comes from, with the Node and SDK versions and the repository's path. */
export function codeFingerprint(root: string = REPO_ROOT, sdkVersion: string = pulumiSdkVersion()): string {
  const hash = createHash("sha256").update(`${process.version}\n${sdkVersion}\n${root}\n`);
  const files = [...CODE_DIRS.flatMap((d) => listFiles(path.join(root, d))), ...CODE_FILES.map((f) => path.join(root, f)).filter((f) => fs.existsSync(f))];
  for (const file of files) hash.update(`${path.relative(root, file)}\0`).update(fs.readFileSync(file)).update("\0");
  return hash.digest("hex").slice(0, 32);
}

function pulumiSdkVersion(): string {
  return (require("@pulumi/pulumi/package.json") as { version: string }).version;
}

const NAMED = Symbol.for("comfyume.providerCodeNames");
function namedProviders(): WeakMap<object, string> {
  const holder = globalThis as { [NAMED]?: WeakMap<object, string> };
  return (holder[NAMED] ??= new WeakMap());
}

/**
 * Names a provider for the cache at its definition ("<module path>#<export name>"). `pulumi up` starts the
 * program from one bundle (infra/start/bundle.cjs), where no module of the repository is in require.cache for
 * providerName to find: without this name every provider would be serialized again in every run. Returns it.
 */
export function cacheableProvider<T extends object>(name: string, provider: T): T {
  namedProviders().set(provider, name);
  return provider;
}

/**
 * The name a provider was given with cacheableProvider, else "<module path relative to root>#<export name>" of a
 * provider exported by one of the repository's code modules (found in require.cache).
 */
export function providerName(provider: unknown, root: string = REPO_ROOT, modules: NodeJS.Dict<NodeModule> = require.cache): string | undefined {
  if (!provider || typeof provider !== "object") return undefined;
  const given = namedProviders().get(provider);
  if (given) return given;
  for (const mod of Object.values(modules)) {
    if (!mod?.filename || !CODE_DIRS.some((d) => mod.filename.startsWith(path.join(root, d) + path.sep))) continue;
    const exported = mod.exports as Record<string, unknown> | undefined;
    if (!exported || typeof exported !== "object") continue;
    let entries: [string, unknown][];
    try {
      entries = Object.entries(exported); // export getters of a module still loading may throw
    } catch {
      continue;
    }
    for (const [name, value] of entries) {
      if (value === provider) return `${path.relative(root, mod.filename)}#${name}`;
    }
  }
  return undefined;
}

/**
 * Wraps the SDK's serializer: a dynamic provider (`() => provider` with allowSecrets, the shape the SDK's
 * dynamic.Resource passes) that is a named export of the repository's code is read from the cache when its
 * fingerprint matches, else serialized and written there. Everything else goes to `inner` untouched.
 */
export function cachingSerializer(inner: SerializeFunction, opts: { dir: string; fingerprint: () => string; name?: (provider: unknown) => string | undefined }): SerializeFunction {
  const nameOf = opts.name ?? ((p: unknown) => providerName(p));
  return async (func, args = {}) => {
    const isProviderShape = typeof func === "function" && func.length === 0 && Object.keys(args).length === 1 && args.allowSecrets === true;
    const name = isProviderShape ? nameOf(func()) : undefined;
    if (!name) return inner(func, args);
    const fingerprint = opts.fingerprint();
    const file = path.join(opts.dir, `${fingerprint}-${createHash("sha256").update(name).digest("hex").slice(0, 16)}.json`);
    try {
      const hit = JSON.parse(fs.readFileSync(file, "utf8")) as { name?: unknown; text?: unknown };
      if (hit.name === name && typeof hit.text === "string" && hit.text.length > 0) return { text: hit.text, containsSecrets: false };
    } catch {
      // no entry yet (or unreadable): serialize
    }
    const fresh = await inner(func, args);
    if (!fresh.containsSecrets) writeEntry(opts.dir, file, fingerprint, { name, text: fresh.text });
    return fresh;
  };
}

function writeEntry(dir: string, file: string, fingerprint: string, entry: { name: string; text: string }): void {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    // Entries of older code versions are never read again.
    for (const old of fs.readdirSync(dir)) if (old.endsWith(".json") && !old.startsWith(fingerprint)) fs.rmSync(path.join(dir, old), { force: true });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(entry), { mode: 0o600 });
    fs.renameSync(tmp, file); // atomic: a concurrent program reads a whole entry or none
  } catch {
    // A cache that cannot be written only costs the next run the serialization.
  }
}

/** Installs the cache into the SDK's serializer (once per process). The program calls it before declaring anything. */
export function installProviderCodeCache(dir: string = path.join(REPO_ROOT, ".comfyume", "provider-code")): boolean {
  if (process.env.COMFYUME_PROVIDER_CODE_CACHE === "off") return false;
  // The module the SDK's dynamic.Resource calls at construction time (`sc.serializeFunction(() => provider, { allowSecrets: true })`).
  const closure = require("@pulumi/pulumi/runtime/closure/serializeClosure") as { serializeFunction: SerializeFunction & { [MARK]?: true } };
  if (closure.serializeFunction[MARK]) return true;
  let fingerprint: string | undefined;
  const wrapped = cachingSerializer(closure.serializeFunction, { dir, fingerprint: () => (fingerprint ??= codeFingerprint()) }) as SerializeFunction & { [MARK]?: true };
  wrapped[MARK] = true;
  closure.serializeFunction = wrapped;
  return true;
}
