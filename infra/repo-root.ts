// The repository's root directory, the same whether this code runs from its source (tsx, tests) or from the
// bundle under .comfyume/bundles/ that `pulumi up` starts (infra/start/bundle.cjs): `__dirname` differs there.
import * as path from "node:path";

const { findRepoRoot } = require("./start/bundle.cjs") as { findRepoRoot(from: string): string };

/** Outside a checkout (a copy of infra/ alone, as some tests make) the source layout's parent directory. */
export const REPO_ROOT: string = (() => {
  try {
    return findRepoRoot(__dirname);
  } catch {
    return path.resolve(__dirname, "..");
  }
})();

/** A path inside the repository. */
export const repoPath = (...parts: string[]): string => path.join(REPO_ROOT, ...parts);
