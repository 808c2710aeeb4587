// comfyume guardrails policy pack: `pulumi preview|up --policy-pack policy` (scripts/pulumi adds it).
import { PolicyPack } from "@pulumi/policy";
import { buildPolicies } from "./policies";
import { dayStackFor, phaseOfStack } from "./phase";
import { prefetchStackState, readStackState } from "./state";
import { repoPath } from "../infra/repo-root";

// The language host starts us in the program's directory: keep it for `pulumi stack export`, then move
// to our own directory, where @pulumi/policy reads the pack's package.json for its version.
const programDir = process.cwd();
process.chdir(repoPath("policy"));

// The scratch rules read the running stack (and a month's day stack): read them now, beside the program's start.
const running = process.env.COMFYUME_PULUMI_STACK?.split("/").pop();
const phase = running ? phaseOfStack(running) : undefined;
for (const stack of new Set([running, phase && dayStackFor(running!, phase)])) if (stack) void prefetchStackState(stack, programDir);

new PolicyPack("comfyume-guardrails", {
  policies: buildPolicies({ readState: (stack) => readStackState(stack, programDir) }),
});
