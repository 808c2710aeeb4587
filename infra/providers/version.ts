// The version of this project's dynamic-provider code. Every dynamic resource records it as the input
// `providerVersion`. Pulumi runs `delete` (and `read`) with the provider code stored in state, so a fix to a
// delete or backup path would never reach a stack created before it. Bumping this constant makes the next
// `pulumi up` update every dynamic resource in place (no API call, no remote command), which stores the current
// code in state; from then on `destroy` runs the fixed code. Bump it whenever provider code changes behaviour.
export const PROVIDER_VERSION = "2026.12.1";

/** The input key every dynamic resource carries (see PROVIDER_VERSION). */
export const PROVIDER_VERSION_KEY = "providerVersion";
