import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { openApiPath } from "../support/openapi";

// A user's clone is all they have: nothing in the project may read the workspace's ../shared folder
// (the OpenAPI document lives in api/verda/, the API notes in docs/verda-api.md).
const ROOT = path.resolve(__dirname, "../..");

describe("the repository stands on its own", () => {
  it("no tracked file refers to ../shared", () => {
    const tracked = execFileSync("git", ["ls-files", "-z"], { cwd: ROOT, encoding: "utf8" }).split("\0").filter(Boolean);
    expect(tracked.length).toBeGreaterThan(100);
    const self = "test/architecture/self-contained.test.ts";
    const offenders = tracked
      .filter((f) => f !== self && fs.existsSync(path.join(ROOT, f)) && fs.statSync(path.join(ROOT, f)).isFile())
      .filter((f) => /\.\.\/shared\b|\bwork\/shared\b/.test(fs.readFileSync(path.join(ROOT, f), "utf8")));
    expect(offenders).toEqual([]);
  });

  it("reads Verda's OpenAPI document from the repository", () => {
    if (process.env.VERDA_OPENAPI) return; // an explicit override is the one exception (README of api/verda)
    expect(path.relative(ROOT, openApiPath())).toBe(path.join("api", "verda", "openapi.json"));
    const doc = JSON.parse(fs.readFileSync(openApiPath(), "utf8")) as { openapi: string; paths: object };
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths).length).toBe(80);
  });
});
