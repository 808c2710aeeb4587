// A throwaway Pulumi project for driving the real program against the local cloud: the repository's
// Pulumi.yaml with `main` pointing back at the repository, its own (empty) stacks/ directory and
// state backend inside the cloud's directory. So `config set` never touches the repository's stack
// files, and closing the cloud removes every stack it saw.
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import * as path from "node:path";

const REPO = path.resolve(__dirname, "../..");

export interface SimPulumiProject {
  projectDir: string;
  backendUrl: string;
  passphrase: string;
}

export function writeSimPulumiProject(dir: string): SimPulumiProject {
  const projectDir = path.join(dir, "project");
  const stateDir = path.join(dir, "pulumi-state");
  mkdirSync(path.join(projectDir, "stacks"), { recursive: true });
  mkdirSync(stateDir, { recursive: true });
  const original = readFileSync(path.join(REPO, "Pulumi.yaml"), "utf8");
  if (!/^main: .+$/m.test(original)) throw new Error("Pulumi.yaml has no `main:` line to point at the repository");
  writeFileSync(path.join(projectDir, "Pulumi.yaml"), original.replace(/^main: (.+)$/m, (_l, main: string) => `main: ${path.resolve(REPO, main.trim())}`));
  // As in the repository, the project directory holds node_modules: the dynamic-provider launcher finds the SDK there.
  symlinkSync(path.join(REPO, "node_modules"), path.join(projectDir, "node_modules"));
  return { projectDir, backendUrl: `file://${stateDir}`, passphrase: "local-cloud-throwaway" };
}
