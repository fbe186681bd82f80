/**
 * What of a request may be written down: values of secret fields never reach the audit log, and
 * fields whose name says secret never reach a debug log line.
 */
import type { FieldValues, FormField } from "../forms.js";

/** The vars of text-private fields (a `secret` parameter): their values are audited as "[redacted]". */
export function secretVars(fields: readonly FormField[]): Set<string> {
  return new Set(fields.filter((f) => f.type === "text-private" && f.var).map((f) => f.var!));
}

export function redactValues(values: Readonly<FieldValues>, secret: ReadonlySet<string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(values)) if (v !== undefined) out[k] = secret.has(k) ? "[redacted]" : v;
  return out;
}

/**
 * For the raw request XML logged at debug: the form's declaration is not known yet when a request
 * is logged, so a field is taken as secret by its name (password, pin, token, key).
 */
export function redactSecretFields(xml: string): string {
  return xml.replace(
    /(<field\b[^>]*\bvar=(["'])[^"']*(?:pass|secret|pin|token|key)[^"']*\2[^>]*>)[\s\S]*?(<\/field>)/gi,
    "$1[redacted]$3",
  );
}
