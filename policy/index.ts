// comfyume guardrails policy pack: `pulumi preview|up --policy-pack policy` (scripts/pulumi adds it).
import path from "node:path";
import { PolicyPack } from "@pulumi/policy";
import { buildPolicies } from "./policies";
import { readStackState } from "./state";

// The language host starts us in the program's directory: keep it for `pulumi stack export`, then move
// to our own directory, where @pulumi/policy reads the pack's package.json for its version.
const programDir = process.cwd();
process.chdir(path.resolve(__dirname));

new PolicyPack("comfyume-guardrails", {
  policies: buildPolicies({ readState: (stack) => readStackState(stack, programDir) }),
});
