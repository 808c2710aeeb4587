// What the scratch rules need to know about a stack, read once per stack and policy-pack process:
// the stack's last state, and whether its day stack (itself, or `<env>-day` for a month) is up.
import { dayStackFor, phaseOfStack } from "./phase";
import type { ScratchContext } from "./rules/scratch-replacement";
import { hasInstance, type StackState } from "./state";

/** undefined where no scratch rule applies (idle, stacks that name no phase); throws when state cannot be read. */
export function scratchContextReader(readState: (stack: string) => StackState): (stack: string) => ScratchContext | undefined {
  const contexts = new Map<string, ScratchContext | undefined>();
  return (stack) => {
    if (contexts.has(stack)) return contexts.get(stack);
    const phase = phaseOfStack(stack);
    const dayStack = phase && dayStackFor(stack, phase);
    let context: ScratchContext | undefined;
    if (dayStack) {
      const own = readState(stack);
      // The stack being previewed exists; not finding it means the wrong project or backend was read,
      // which must not pass as "nothing is up".
      if (!own.exists) throw new Error(`stack ${stack} was not found by \`pulumi stack export\` (wrong project directory or backend?)`);
      const day = dayStack === stack ? own : readState(dayStack);
      context = { dayStack, dayStackUp: hasInstance(day), previous: own.resources };
    }
    contexts.set(stack, context);
    return context;
  };
}
