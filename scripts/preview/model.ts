// The preview, reduced to what the summary shows: one planned change per resource, the counts,
// the engine's errors and warnings, and the policy violations.

export type ChangeKind = "create" | "update" | "replace" | "delete" | "other";

export interface ResourceState {
  type?: string;
  parent?: string;
  protect?: boolean;
  inputs?: Record<string, unknown>;
  outputs?: Record<string, unknown>;
}

export interface PlannedChange {
  kind: ChangeKind;
  /** The engine's own operation name (e.g. `create-replacement`, `read`). */
  op: string;
  urn: string;
  type: string;
  /** Parent (component) URN. */
  parent?: string;
  protect: boolean;
  /** Properties that changed (the engine's reasons, or our own comparison of the inputs). */
  changedKeys: string[];
  old?: ResourceState;
  new?: ResourceState;
}

export interface Diagnostic {
  severity: "error" | "warning";
  message: string;
  urn?: string;
}

export interface PolicyViolation {
  policy: string;
  pack?: string;
  level: string;
  message: string;
  urn?: string;
}

export interface PreviewData {
  changes: PlannedChange[];
  /** Counts per operation as the engine reports them (create, update, replace, delete, same, ...). */
  changeSummary: Record<string, number>;
  diagnostics: Diagnostic[];
  policyViolations: PolicyViolation[];
  /** False when the input could not show policy violations (the `--json` digest omits them). */
  policyEventsSeen: boolean;
}
