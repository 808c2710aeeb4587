// Create calls answer with the new ID as a bare UUID (text), a JSON string, or `{"id": ...}`
// depending on endpoint and API version (verda-api.md §10.1). Accept all of them.

export function parseCreatedId(body: unknown, rawText: string): string {
  if (typeof body === "string" && body.trim() !== "") return body.trim();
  if (typeof body === "number") return String(body);
  if (Array.isArray(body) && body.length === 1) return parseCreatedId(body[0], "");
  if (body && typeof body === "object" && typeof (body as { id?: unknown }).id === "string") {
    return (body as { id: string }).id;
  }
  const text = rawText.trim().replace(/^"(.*)"$/, "$1").trim();
  if (text !== "" && !/\s/.test(text) && !text.startsWith("{") && !text.startsWith("[")) return text;
  throw new Error(`Verda create call answered without a recognisable ID (body: ${rawText.slice(0, 80)})`);
}

/** GET /ssh-keys/{id} and /scripts/{id} answer a one-element array in practice, an object per the spec. */
export function singleOf<T>(body: unknown): T | undefined {
  if (Array.isArray(body)) return body[0] as T | undefined;
  return (body ?? undefined) as T | undefined;
}
