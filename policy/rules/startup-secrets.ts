// Startup scripts are stored by Verda in plain text and shown in its console: no secret may be in
// one. Secrets reach the instance over SSH on stdin instead.
import { readProp, TYPES, UNKNOWN } from "../resources";

interface SecretPattern {
  kind: string;
  pattern: RegExp;
}

const PATTERNS: SecretPattern[] = [
  { kind: "private key block", pattern: /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/ },
  { kind: "AWS-style access key ID", pattern: /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/ },
  { kind: "Tailscale auth key", pattern: /\btskey-[A-Za-z0-9]+-[A-Za-z0-9-]{8,}/ },
  { kind: "GitHub token", pattern: /\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})/ },
  { kind: "Slack token", pattern: /\bxox[abprs]-[A-Za-z0-9-]{10,}/ },
  { kind: "API secret key (sk-...)", pattern: /\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}/ },
  { kind: "Hugging Face token", pattern: /\bhf_[A-Za-z0-9]{30,}/ },
  { kind: "JSON web token", pattern: /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/ },
  { kind: "password in a URL", pattern: /\b[a-z][a-z0-9+.-]*:\/\/[^\s:@/'"]+:(?![$<])[^\s@/'"]{3,}@/i },
];

// NAME=value where NAME says secret and value is a literal (not $VAR, $(cmd), <placeholder> or a path).
const ASSIGNMENT =
  /\b([A-Za-z_]*(?:PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ACCESS_KEY|AUTH_KEY|PRIVATE_KEY)[A-Za-z0-9_]*)["']?\s*[:=]\s*["']?([^\s"'$<`{][^\s"'`]{7,})/gi;
const NOT_A_VALUE_NAME = /_(?:FILE|PATH|DIR|URL|ENDPOINT|ID|NAME)$/i;

/** Kinds of secret-looking values in `text`, with their line numbers; never the values themselves. */
export function findSecretLookingValues(text: string): string[] {
  const findings: string[] = [];
  text.split("\n").forEach((line, index) => {
    const where = `line ${index + 1}`;
    for (const { kind, pattern } of PATTERNS) {
      if (pattern.test(line)) findings.push(`${kind} on ${where}`);
    }
    for (const match of line.matchAll(ASSIGNMENT)) {
      const [, name, value] = match;
      if (NOT_A_VALUE_NAME.test(name) || value.startsWith("/")) continue;
      findings.push(`literal value for ${name} on ${where}`);
    }
  });
  return [...new Set(findings)];
}

export function startupScriptViolation(type: string, props: Record<string, unknown> | undefined): string | undefined {
  if (type !== TYPES.startupScript) return undefined;
  const script = readProp(props, "script");
  if (script === UNKNOWN || typeof script !== "string") return undefined; // checked again when known (up)
  const findings = findSecretLookingValues(script);
  if (findings.length === 0) return undefined;
  return `The startup script contains secret-looking values (${findings.join("; ")}). Verda stores startup scripts in plain text: pass secrets over SSH on stdin (remote:Command stdin) instead.`;
}
