/**
 * Canonical JSON (the subset of RFC 8785 / JCS a bundle needs): object keys sorted by UTF-16 code
 * units, no whitespace, strings escaped by JSON.stringify, integers only. Signatures are computed
 * over these bytes, so the signer and the verifier agree byte for byte regardless of how the file
 * was pretty-printed or which key order a text editor left behind.
 */
import { ProvisioningError } from "./errors.js";

export type CanonicalValue = null | boolean | number | string | CanonicalValue[] | { [k: string]: CanonicalValue };

export function canonicalJson(value: unknown, path = "$"): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false";
    case "string":
      return JSON.stringify(value);
    case "number":
      // Floats have several textual forms across implementations; bundles never need them.
      if (!Number.isSafeInteger(value))
        throw new ProvisioningError("bundle_malformed", `${path}: only safe integers can be signed, got ${value}`, {
          path,
        });
      return String(value);
    case "object": {
      if (Array.isArray(value)) return `[${value.map((v, i) => canonicalJson(v, `${path}[${i}]`)).join(",")}]`;
      const keys = Object.keys(value as object)
        .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
        .sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k], `${path}.${k}`)}`).join(",")}}`;
    }
    default:
      throw new ProvisioningError("bundle_malformed", `${path}: ${typeof value} cannot be signed`, { path });
  }
}
