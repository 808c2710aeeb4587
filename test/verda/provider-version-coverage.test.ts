// Every dynamic resource under infra/ must carry the provider version (see infra/providers/version.ts):
// a new dynamic resource without it would keep its delete code frozen in state forever.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { expect, it } from "vitest";

const infra = path.resolve(__dirname, "../../infra");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith(".ts") ? [full] : [];
  });
}

it("every pulumi.dynamic.Resource class passes providerVersion: PROVIDER_VERSION", () => {
  const classes = sourceFiles(infra).flatMap((file) => {
    const text = readFileSync(file, "utf8");
    return [...text.matchAll(/class (\w+) extends pulumi\.dynamic\.Resource \{([\s\S]*?)\n\}/g)].map((m) => ({ file: path.relative(infra, file), name: m[1], body: m[2] }));
  });
  expect(classes.map((c) => c.name)).toEqual(expect.arrayContaining(["Instance", "Volume", "SshKey", "StartupScript", "RemoteCommand", "RemoteFiles"]));
  const missing = classes.filter((c) => !/providerVersion: PROVIDER_VERSION/.test(c.body)).map((c) => `${c.file}: ${c.name}`);
  expect(missing).toEqual([]);
});
