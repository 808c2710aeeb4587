"use strict";
// Starts a TypeScript entry (the Pulumi program, the policy pack) from one esbuild bundle instead of through tsx.
//
// Every `pulumi up` starts the policy pack, then the program, one after the other, before anything is created.
// Through tsx each spent ~1.0 s and ~1.4 s loading (tsx's resolve hooks sit in front of every require, the SDK's
// hundreds of files included); from one bundle, 0.5 s and 0.65 s (docs/rehearsal.md, session 22). The bundle is
// built on first use into <repo>/.comfyume/bundles/ and used while every file it was built from (recorded with
// its SHA-256) is unchanged; any edit rebuilds it (~0.2 s). Packages stay external: node_modules is required as
// usual, so the closures Pulumi serializes still name them. If esbuild cannot build (or COMFYUME_BUNDLE=off),
// the entry is loaded through tsx as before, with a warning on stderr.
const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");

/** Bumped when this file changes how bundles are built: older bundles are rebuilt. */
const LOADER_VERSION = "1";

/** The repository: the nearest directory above `from` whose package.json is comfyume-infra's. */
function findRepoRoot(from) {
  for (let dir = from; ; dir = path.dirname(dir)) {
    try {
      if (JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")).name === "comfyume-infra") return dir;
    } catch {
      // no (readable) package.json here: keep walking up
    }
    if (path.dirname(dir) === dir) throw new Error(`no comfyume-infra package.json above ${from}`);
  }
}

function sha256(file) {
  return crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

/** What a bundle depends on besides its inputs: a change in any of these rebuilds it. */
function buildKey() {
  return `${LOADER_VERSION} node ${process.version} esbuild ${require("esbuild/package.json").version}`;
}

/** The recorded build is current: same key, every input file present with the same content. */
function isFresh(root, outFile, metaFile) {
  let meta;
  try {
    meta = JSON.parse(fs.readFileSync(metaFile, "utf8"));
    if (!fs.existsSync(outFile) || meta.key !== buildKey()) return false;
    return Object.entries(meta.inputs).every(([rel, hash]) => sha256(path.join(root, rel)) === hash);
  } catch {
    return false; // no record, or an input gone
  }
}

/** Writes `contents` to `file` through a temporary file and a rename: a concurrent start reads all or nothing. */
function writeAtomically(file, contents) {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, contents);
  fs.renameSync(tmp, file);
}

function build(root, entry, outFile, metaFile) {
  const esbuild = require("esbuild");
  const result = esbuild.buildSync({
    absWorkingDir: root,
    entryPoints: [entry],
    bundle: true,
    platform: "node",
    format: "cjs",
    target: `node${process.versions.node.split(".")[0]}`,
    packages: "external",
    outfile: outFile,
    sourcemap: "linked",
    metafile: true,
    write: false,
    logLevel: "silent",
  });
  fs.mkdirSync(path.dirname(outFile), { recursive: true, mode: 0o700 });
  // The map first: the bundle that names it is only in place once both are.
  const files = [...result.outputFiles].sort((a, b) => Number(b.path.endsWith(".map")) - Number(a.path.endsWith(".map")));
  for (const f of files) writeAtomically(f.path, f.contents);
  const inputs = {};
  for (const rel of [...Object.keys(result.metafile.inputs), "tsconfig.json"]) {
    if (fs.existsSync(path.join(root, rel))) inputs[rel] = sha256(path.join(root, rel));
  }
  writeAtomically(metaFile, JSON.stringify({ key: buildKey(), entry, inputs }));
}

/**
 * Returns what `<repo>/<entry>` exports, loaded from its bundle (built or rebuilt when stale). Errors of the
 * entry itself (a configuration error of the program) are thrown as they are; only a failed build falls back.
 */
function startBundled(entry, name) {
  const root = findRepoRoot(__dirname);
  const outFile = path.join(root, ".comfyume", "bundles", `${name}.js`);
  const metaFile = path.join(root, ".comfyume", "bundles", `${name}.inputs.json`);
  let usable = process.env.COMFYUME_BUNDLE !== "off";
  if (usable && !isFresh(root, outFile, metaFile)) {
    try {
      build(root, entry, outFile, metaFile);
    } catch (error) {
      usable = false;
      const reason = error && error.errors && error.errors.length ? error.errors[0].text : String(error && error.message);
      process.stderr.write(`comfyume: could not bundle ${entry} (${reason}); loading it through tsx instead (slower start)\n`);
    }
  }
  if (usable) return require(outFile);
  require("tsx/cjs/api").register();
  return require(path.join(root, entry));
}

module.exports = { startBundled, findRepoRoot, isFresh };
