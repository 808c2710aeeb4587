// Runs `scripts/pulumi preview --json` as the event stream, the shape that includes policy results.
import { spawnSync } from "node:child_process";
import path from "node:path";

export interface PreviewRun {
  status: number;
  output: string;
}

export function runPreview(stack: string, cwd: string): PreviewRun {
  const wrapper = path.resolve(__dirname, "../pulumi");
  const result = spawnSync(wrapper, ["preview", "--json", "--non-interactive", "--stack", stack], {
    cwd,
    encoding: "utf8",
    env: { ...process.env, PULUMI_ENABLE_STREAMING_JSON_PREVIEW: "true" },
    stdio: ["ignore", "pipe", "inherit"],
    maxBuffer: 512 * 1024 * 1024,
    timeout: 30 * 60_000,
  });
  if (result.error) throw new Error(`cannot run ${wrapper}: ${result.error.message}`);
  return { status: result.status ?? 1, output: result.stdout };
}
