import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "infra/**/*.test.ts", "components/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Engine tests share one Pulumi toolchain and 2 cores: keep files in parallel but bounded.
    maxWorkers: 2,
    reporters: ["default", "json"],
    outputFile: { json: ".comfyume/vitest-results.json" },
  },
});
