// The Pulumi Node SDK sends debug messages to the engine that print RPC responses and, with
// PULUMI_EXCESSIVE_DEBUG_OUTPUT, serialized inputs: resolved values, secrets in clear. The engine masks
// only this stack's own config secrets in messages, and `pulumi up --json` streams every debug message,
// so a secret read through a StackReference (the R2 keys in a month or day stack) or computed by a
// provider ended up in clear in --json event streams, the rehearsal's logs and CI artefacts. The program
// therefore cuts the value-carrying part off every debug message before it leaves the process.

/** Where a runtime debug message starts printing values (RPC responses, serialized properties). */
const VALUE_PART = /(\bresp: |\bobj=|\bprops=|\boutputs=|\bprimitive=|\bfunction=|\bvalue=)[\s\S]*$/;
export const REDACTED = "[values not logged: they may hold secrets]";

/** The message with everything from the first printed value on replaced by a note. */
export function redactDebugMessage(message: string): string {
  return message.replace(VALUE_PART, `$1${REDACTED}`);
}

const INSTALLED = Symbol.for("comfyume.debugRedaction");

/**
 * Wraps the SDK's `log.debug` (the one function its runtime logs RPC values with) so every debug
 * message is redacted. Idempotent; call it before any resource is declared.
 */
export function redactSdkDebugLog(): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the module object itself: its runtime calls log.debug through it
  const log = require("@pulumi/pulumi/log") as Record<string | symbol, unknown> & { debug: (msg: string, ...rest: unknown[]) => Promise<void> };
  if (log[INSTALLED]) return;
  const debug = log.debug;
  log.debug = (msg: string, ...rest: unknown[]) => debug(redactDebugMessage(String(msg)), ...rest);
  log[INSTALLED] = true;
}
