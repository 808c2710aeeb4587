// The guardrail policies: thin adapters from @pulumi/policy's arguments to the pure rules in rules/.
import type { Policies, PolicyResource, ReportViolation, ResourceValidationArgs, StackValidationArgs } from "@pulumi/policy";
import { allowedInstanceTypes, environmentsNamedIn, instanceTypeConfigSchema, type InstanceTypeConfig } from "./config";
import { isDayPhase, layerOf, phaseOfStack, phaseOfUrn, stackOfUrn } from "./phase";
import { type StackResource, missingBackupHooks } from "./rules/backup-hook";
import { idleInstanceViolation } from "./rules/idle-instance";
import { instanceTypeViolation } from "./rules/instance-type";
import { protectionViolation } from "./rules/protection";
import { removedScratchViolations, scratchReplacementViolation } from "./rules/scratch-replacement";
import { startupScriptViolation } from "./rules/startup-secrets";
import { TYPES } from "./resources";
import { scratchContextReader } from "./scratch-context";
import type { StackState } from "./state";

export interface PolicyDeps {
  /** A stack's last state (see state.ts); throws when it cannot be read. */
  readState(stack: string): StackState;
}

const reportIf = (report: ReportViolation, message: string | undefined, urn?: string) => {
  if (message) report(message, urn);
};

const stackResource = (r: PolicyResource): StackResource => ({
  urn: r.urn,
  type: r.type,
  props: r.props,
  dependencies: r.dependencies.map((d) => d.urn),
});

/**
 * Every rule applies to stacks named after a phase (idle, workshop-day, rehearsal-workshop-day, prod-day, ...):
 * the program refuses any other stack (infra/config.ts), so other stacks are test or scratch projects.
 */
export function buildPolicies(deps: PolicyDeps): Policies {
  const scratchContext = scratchContextReader(deps.readState);
  const failClosed = (report: ReportViolation, e: unknown) => report(`Cannot check the scratch volume: ${e instanceof Error ? e.message : String(e)}`);

  return [
    {
      name: "no-verda-instance-in-idle",
      description: "The idle phase runs no Verda instance.",
      enforcementLevel: "mandatory",
      validateResource: (args: ResourceValidationArgs, report) => {
        const phase = phaseOfUrn(args.urn);
        if (phase) reportIf(report, idleInstanceViolation(args.type, phase));
      },
    },
    {
      name: "data-resources-protected",
      description: "The shared file system (SFS), the R2 backup buckets and a month-scoped scratch volume are protected.",
      enforcementLevel: "mandatory",
      validateResource: (args, report) => {
        const phase = phaseOfUrn(args.urn);
        if (phase) reportIf(report, protectionViolation(args.type, args.props, args.opts.protect, layerOf(phase)));
      },
    },
    {
      name: "instance-type-allow-list",
      description: "Verda instance types are within the phase's allow-list.",
      enforcementLevel: "mandatory",
      configSchema: instanceTypeConfigSchema,
      validateResource: (args, report) => {
        const config = args.getConfig<Partial<InstanceTypeConfig>>();
        const phase = phaseOfUrn(args.urn, environmentsNamedIn(config));
        if (phase) reportIf(report, instanceTypeViolation(args.type, args.props, phase, allowedInstanceTypes(config, phase)));
      },
    },
    {
      name: "startup-script-no-secrets",
      description: "No Verda startup script contains a secret-looking value.",
      enforcementLevel: "mandatory",
      validateResource: (args, report) => {
        if (phaseOfUrn(args.urn)) reportIf(report, startupScriptViolation(args.type, args.props));
      },
    },
    {
      name: "day-instance-backup-hook",
      description: "Every day-stack instance has a backup-before-delete hook (a remote command depending on it whose delete runs backup-to-r2).",
      enforcementLevel: "mandatory",
      validateStack: (args: StackValidationArgs, report) => {
        const stack = args.resources.length ? stackOfUrn(args.resources[0].urn) : undefined;
        if (!stack || !isDayPhase(phaseOfStack(stack))) return;
        for (const v of missingBackupHooks(args.resources.map(stackResource))) report(v.message, v.urn);
      },
    },
    {
      name: "scratch-not-replaced-while-day-up",
      description: "The scratch volume is never replaced while a day stack is up.",
      enforcementLevel: "mandatory",
      validateResource: (args, report) => {
        const stack = stackOfUrn(args.urn);
        if (!stack || args.type !== TYPES.volume) return;
        try {
          const ctx = scratchContext(stack);
          if (ctx) reportIf(report, scratchReplacementViolation(args.urn, args.type, args.props, ctx));
        } catch (e) {
          failClosed(report, e);
        }
      },
    },
    {
      name: "scratch-not-removed-while-day-up",
      description: "The scratch volume is not removed from the program while a day stack is up (only the nightly destroy deletes it).",
      enforcementLevel: "mandatory",
      validateStack: (args, report) => {
        const stack = args.resources.length ? stackOfUrn(args.resources[0].urn) : undefined;
        if (!stack) return;
        try {
          const ctx = scratchContext(stack);
          if (ctx) for (const v of removedScratchViolations(args.resources.map((r) => r.urn), ctx)) report(v.message, v.urn);
        } catch (e) {
          failClosed(report, e);
        }
      },
    },
  ];
}
