"use strict";
// Loads TypeScript only when something uses it.
//
// @pulumi/pulumi requires its typescript-shim (TypeScript's 9 MB compiler) at start-up, for the closure serializer
// alone. Measured here: 0.33 s of the SDK's 0.59 s load, paid three times one after the other before the first
// create of an `up` (policy pack, program, dynamic-provider host). The policy pack and the provider host never
// serialize a function, and the program does only when a provider's code is not in the provider-code cache
// (infra/provider-code-cache.ts). So the shim's place in require.cache gets a stand-in that loads the real shim on
// first use and forwards everything to it. scripts/pulumi preloads it (NODE_OPTIONS --require) in every Node process
// the CLI starts: the program's runner loads the SDK before the program's own entry, so only a preload is early
// enough. COMFYUME_DEFER_TYPESCRIPT=off leaves the SDK as it is; so does an SDK this cannot find (it then loads
// TypeScript itself, as before).
const Module = require("node:module");
const path = require("node:path");

const SHIM = "@pulumi/pulumi/typescript-shim";

/** The real shim, loaded as its own module (the cache entry is the stand-in, so `require` would return that). */
function loadRealShim(file) {
  const real = new Module(file, null);
  real.filename = file;
  real.paths = Module._nodeModulePaths(path.dirname(file));
  real.load(file);
  return real.exports;
}

/** A stand-in for the shim at `file`: every use (property read, `in`, key listing) loads and forwards to the real one. */
function lazyShim(file) {
  let real;
  const target = () => (real ??= loadRealShim(file));
  return new Proxy(
    {},
    {
      get: (_, key) => Reflect.get(target(), key),
      has: (_, key) => Reflect.has(target(), key),
      ownKeys: () => Reflect.ownKeys(target()),
      getOwnPropertyDescriptor: (_, key) => {
        const d = Reflect.getOwnPropertyDescriptor(target(), key);
        return d && { ...d, configurable: true };
      },
      set: (_, key, value) => Reflect.set(target(), key, value),
    },
  );
}

/**
 * Registers the stand-in for the SDK found from each of `dirs` (the program's and the policy pack's may differ).
 * Returns the shim files deferred (none when disabled, not found, or already loaded).
 */
function deferTypescript(dirs = [process.cwd(), path.resolve(__dirname, "..", "..")]) {
  if (process.env.COMFYUME_DEFER_TYPESCRIPT === "off") return [];
  const deferred = [];
  for (const dir of dirs) {
    try {
      const file = require.resolve(SHIM, { paths: [dir] });
      if (require.cache[file]) continue;
      const stub = new Module(file, null);
      stub.filename = file;
      stub.loaded = true;
      stub.exports = lazyShim(file);
      require.cache[file] = stub;
      deferred.push(file);
    } catch {
      // No SDK from here: nothing to defer.
    }
  }
  return deferred;
}

module.exports = { deferTypescript };
// Acts when loaded (an entry's require, or node --require through NODE_OPTIONS); a second call changes nothing.
deferTypescript();
