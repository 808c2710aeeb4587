import { shellQuote } from "../../components/remote";

export { shellQuote };

/** `export NAME='value'` lines, in the given order. */
export function exportLines(env: Record<string, string>): string {
  return Object.entries(env)
    .map(([k, v]) => `export ${k}=${shellQuote(v)}`)
    .join("\n");
}
