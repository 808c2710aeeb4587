// The day's pre-flight when `up` runs without a preview (scripts/pulumi skips it for a day stack that is down).
//
// The engine runs stack policies only after every step of an update (deployment_executor.go: AnalyzeResources
// after the step executor has completed), so without a preview `day-instance-backup-hook` would fail only once
// the instance exists. This gate holds back every custom resource the day declares: each one's registration
// waits (its `dependsOn` becomes a promise) until the program has declared all of them and the same rule
// (policy/rules/backup-hook.ts) has passed over what it declared. A violation rejects the gate: nothing reaches
// the engine, so nothing is created. The policy pack stays the second line.
import * as pulumi from "@pulumi/pulumi";
import { missingBackupHooks, type StackResource } from "../../policy/rules/backup-hook";
import { UNKNOWN } from "../../policy/resources";

interface Declared {
  key: string;
  type: string;
  resource: pulumi.Resource;
  props: Record<string, unknown>;
  opts: pulumi.CustomResourceOptions;
}

/** Outputs anywhere in a value (props nest them in objects and arrays). */
function outputsIn(value: unknown, found: pulumi.Output<unknown>[] = [], depth = 0): pulumi.Output<unknown>[] {
  if (depth > 8 || value === null || typeof value !== "object") return found;
  if (pulumi.Output.isInstance(value)) {
    found.push(value);
    return found;
  }
  for (const v of Array.isArray(value) ? value : Object.values(value)) outputsIn(v, found, depth + 1);
  return found;
}

/** The resources an Output was computed from (the SDK's record; the engine gets the same as the resource's dependencies). */
const resourcesOf = (o: pulumi.Output<unknown>): pulumi.Resource[] => [...((o as unknown as { resources(): Set<pulumi.Resource> }).resources?.() ?? [])];

export class DayPreflight {
  private readonly declared: Declared[] = [];
  private open!: () => void;
  private refuse!: (e: Error) => void;
  /** Resolves once the rules passed; rejects with the violation (then no gated resource is ever registered). */
  readonly passed: Promise<void>;

  constructor() {
    this.passed = new Promise<void>((resolve, reject) => {
      this.open = resolve;
      this.refuse = reject;
    });
    // Every gated registration awaits it; an unobserved rejection must not crash the program before the RunError.
    this.passed.catch(() => undefined);
  }

  /** From now on every custom resource of this program waits for the gate (a stack transformation). */
  install(register: (t: pulumi.ResourceTransformation) => void = pulumi.runtime.registerStackTransformation): void {
    register((args) => {
      // Components create nothing in the cloud (and their RTTI marks are set only after this runs).
      if (args.resource instanceof pulumi.ComponentResource) return undefined;
      const opts = args.opts as pulumi.CustomResourceOptions;
      this.declared.push({ key: `${args.type}::${args.name}`, type: args.type, resource: args.resource, props: args.props, opts });
      const original = opts.dependsOn;
      const gated = this.passed.then(() => original ?? []) as unknown as pulumi.Input<pulumi.Input<pulumi.Resource>[]>;
      return { props: args.props, opts: { ...opts, dependsOn: gated } };
    });
  }

  /** The declared resources in the policy's shape: dependencies are explicit `dependsOn` plus the inputs' resources. */
  async declaredResources(): Promise<StackResource[]> {
    const keyOf = new Map(this.declared.map((d) => [d.resource, d.key]));
    const gatedSet = new Set(this.declared.map((d) => d.resource));
    return Promise.all(
      this.declared.map(async (d) => {
        const explicit = Array.isArray(d.opts.dependsOn) ? d.opts.dependsOn : d.opts.dependsOn ? [d.opts.dependsOn] : [];
        const deps = [...explicit.filter((r): r is pulumi.Resource => pulumi.Resource.isInstance(r)), ...outputsIn(d.props).flatMap(resourcesOf)];
        return {
          urn: d.key,
          type: d.type,
          props: { ...d.props, delete: await commandText(d.props.delete, gatedSet) },
          dependencies: [...new Set(deps.map((r) => keyOf.get(r)).filter((k): k is string => k !== undefined))],
        };
      }),
    );
  }

  /** Runs the rules over everything declared so far; opens the gate or refuses it (then throws the violation). */
  async check(stack: string): Promise<void> {
    const violations = missingBackupHooks(await this.declaredResources());
    if (violations.length === 0) {
      this.open();
      return;
    }
    const message =
      `day pre-flight (stack ${stack}, up without a preview): nothing was created. ` +
      violations.map((v) => `${v.urn?.split("::").pop() ?? "instance"}: ${v.message}`).join(" ");
    const error = new pulumi.RunError(message);
    this.refuse(error);
    throw error;
  }
}

/**
 * A command's text as the policy reads it: a string, or UNKNOWN while it waits on a resource of this program
 * (awaiting it would wait on the gate itself). A value from a StackReference is known here: awaited.
 */
async function commandText(value: unknown, gated: Set<pulumi.Resource>): Promise<unknown> {
  if (!pulumi.Output.isInstance(value)) return value;
  if (resourcesOf(value).some((r) => gated.has(r))) return UNKNOWN;
  // An unknown value (a preview) never reaches apply's callback.
  if (!(await (value as unknown as { isKnown: Promise<boolean> }).isKnown)) return UNKNOWN;
  return new Promise((resolve) => value.apply((v) => resolve(v)));
}
