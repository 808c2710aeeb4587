// The version of this project's dynamic-provider code. Every dynamic resource records it as the input
// `providerVersion`. Pulumi runs `delete` (and `read`) with the provider code stored in state, so a fix to a
// delete or backup path would never reach a stack created before it. Bumping this constant makes the next
// `pulumi up` update every dynamic resource in place (no API call, no remote command), which stores the current
// code in state; from then on `destroy` runs the fixed code. Bump it whenever provider code changes behaviour.
export const PROVIDER_VERSION = "2026.12.2";

/** The input key every dynamic resource carries (see PROVIDER_VERSION). */
export const PROVIDER_VERSION_KEY = "providerVersion";

type Versioned = { [PROVIDER_VERSION_KEY]?: unknown };

/** The version recorded in state or inputs; "" for state written before versions existed. */
export function providerVersionOf(values: object | undefined): string {
  const version = (values as Versioned | undefined)?.[PROVIDER_VERSION_KEY];
  return typeof version === "string" ? version : "";
}

/**
 * True when the inputs carry another provider version than the state. `diff` must report this as a change
 * (never a replace) and `update` then records the new version (and with it the current code) doing nothing else.
 */
export function providerVersionChanged(olds: object | undefined, news: object | undefined): boolean {
  return providerVersionOf(olds) !== providerVersionOf(news);
}

/** `values` with the version of `news` (or the current one), for outputs: the next diff compares against it. */
export function withProviderVersion<T extends object>(values: T, news?: object): T & { providerVersion: string } {
  return { ...values, [PROVIDER_VERSION_KEY]: providerVersionOf(news) || PROVIDER_VERSION } as T & { providerVersion: string };
}

/** `values` with the version recorded in `props` if any (read/refresh must not claim code it does not have). */
export function keepProviderVersion<T extends object>(values: T, props: object | undefined): T {
  const version = providerVersionOf(props);
  return version ? ({ ...values, [PROVIDER_VERSION_KEY]: version } as T) : values;
}
