// The only deviations from Verda's OpenAPI document that the conformance validator accepts.
// Each one is forced by the document itself (it contradicts its own text or examples) or by
// live behaviour recorded in docs/verda-api.md. Keep this list short; every entry needs a reason.

export interface SchemaPatch {
  kind: "schema";
  id: string;
  reason: string;
  /** Component schema names (#/components/schemas/<name>). */
  schemas: string[];
  /** Properties that may also be null. */
  nullable?: string[];
  /** Properties whose schema is replaced. */
  replace?: Record<string, object>;
}

export interface ResponsePatch {
  kind: "response";
  id: string;
  reason: string;
  operations: Array<{ method: string; path: string }>;
  /** Accept a one-element array of the declared 200 schema as well. */
  arrayOfDeclared?: boolean;
  /** Extra success statuses accepted without a body. */
  extraEmptyStatuses?: number[];
}

export interface Note {
  kind: "note";
  id: string;
  reason: string;
}

export type Deviation = SchemaPatch | ResponsePatch | Note;

export const ALLOWLIST: readonly Deviation[] = [
  {
    kind: "note",
    id: "nullable-keyword",
    reason:
      "The document is OpenAPI 3.1 but still marks 40 fields with the 3.0 keyword `nullable: true` (e.g. instance `ip`, SSH key `fingerprint`); JSON Schema 2020-12 ignores it, so the validator reads it as `type: [T, \"null\"]`.",
  },
  {
    kind: "schema",
    id: "instance-null-until-known",
    reason:
      "`os_volume_id` is null until provisioning and `startup_script_id` is null without a script (verda-api.md §4, §10.3: PY and GO treat both as nullable); the schema types them as required strings.",
    schemas: ["GetInstanceResponsePublicApiDto"],
    nullable: ["os_volume_id", "startup_script_id"],
  },
  {
    kind: "schema",
    id: "volume-null-when-detached",
    reason:
      "`instance_id` and `target` are null for a detached volume and `long_term` is null for pay-as-you-go (verda-api.md §7.1); the schema types them as required string/object.",
    schemas: ["GetVolumePublicResponseDto"],
    nullable: ["instance_id", "target", "long_term"],
  },
  {
    kind: "schema",
    id: "trashed-volume-null-when-detached",
    reason: "As above for volumes in trash, which are always detached (`instance_id` and `target` null).",
    schemas: ["GetVolumeInTrashPublicResponseDto"],
    nullable: ["instance_id", "target"],
  },
  {
    kind: "schema",
    id: "volume-instances-objects",
    reason:
      "The schema says `instances` is an array of strings while its own example (and verda-api.md §7.1) shows instance objects ({id, ip, status, hostname, ...}); accept either.",
    schemas: ["GetVolumePublicResponseDto", "GetVolumeInTrashPublicResponseDto"],
    replace: {
      instances: { type: "array", items: { anyOf: [{ type: "string" }, { type: "object", required: ["id"], properties: { id: { type: "string" } } }] } },
    },
  },
  {
    kind: "response",
    id: "get-by-id-one-element-array",
    reason:
      "GET /ssh-keys/{id} and GET /scripts/{id} return a one-element array per both official SDKs (verda-api.md §10.2); the document declares a single object.",
    operations: [
      { method: "GET", path: "/v1/ssh-keys/{sshKeyId}" },
      { method: "GET", path: "/v1/sshkeys/{sshKeyId}" },
      { method: "GET", path: "/v1/scripts/{scriptId}" },
    ],
    arrayOfDeclared: true,
  },
  {
    kind: "response",
    id: "volume-delete-204",
    reason: "DELETE /volumes/{id} answers 204 when already deleted (changelog 2026-03-12, verda-api.md §7.4); the operation declares only 202.",
    operations: [{ method: "DELETE", path: "/v1/volumes/{volume_id}" }],
    extraEmptyStatuses: [204],
  },
  {
    kind: "note",
    id: "global-errors",
    reason:
      "Operations rarely declare their error statuses, but the document's \"Errors\" and \"Rate Limits\" sections define 400/401/402/403/404/409/429/500/503 with a {code, message} body for every endpoint; such responses are checked against PublicApiErrorResponseDto, whose `code` enum lacks the documented `rate_limit_exceeded`.",
  },
  {
    kind: "note",
    id: "bare-id-bodies",
    reason:
      "Create calls (POST /instances, /volumes, /ssh-keys, /scripts) answer the new id as bare text (verda-api.md §10.1); the document declares application/json with only an example, so there is no schema to check and no content type is enforced for them.",
  },
  {
    kind: "note",
    id: "proxy-headers",
    reason: "`cf-connecting-ip` and the UA header are marked required but are set by Cloudflare in front of the API (verda-api.md §1); header parameters are not checked.",
  },
  {
    kind: "note",
    id: "token-form-encoding",
    reason:
      "The token endpoint also accepts application/x-www-form-urlencoded (verda-api.md §2.1, GO's staging fallback); the document declares JSON only. Form bodies are checked as the same fields.",
  },
];
