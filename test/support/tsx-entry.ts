// A project whose own index.ts (a test's program, a copy of an older one) must run, not the repository's: the
// repository's Pulumi.yaml starts the repository's index.ts from its bundle (infra/start/bundle.cjs), found from
// the real path of infra/, so such a project points `main` at its file and loads it through tsx as before.
import * as fs from "node:fs";

/** Pulumi.yaml text with `main: <main>`, run through tsx. */
export function withTsxMain(yaml: string, main: string): string {
  const pointed = yaml.replace(/^main: .+$/m, `main: ${main}`).replace(/^ +nodeargs: .+\n/m, "");
  return pointed.replace(/^( +)typescript: false$/m, `$1typescript: false\n$1nodeargs: "--import tsx"`);
}

/** Rewrites the Pulumi.yaml at `file` so that it runs `main` through tsx. */
export function useTsxMain(file: string, main = "index.ts"): void {
  fs.writeFileSync(file, withTsxMain(fs.readFileSync(file, "utf8"), main));
}
