/**
 * SASLprep (RFC 4013), the minimal form: enough that a password typed on another system with
 * compatibility characters or exotic spaces hashes the same as on the server, and that garbage
 * (control characters and the like) is refused before anything goes on the wire.
 *
 * Covered:
 * - mapping (RFC 3454 B.1 "commonly mapped to nothing" removed; C.1.2 non-ASCII spaces -> U+0020),
 * - NFKC normalisation (JavaScript's, i.e. a newer Unicode version than the 3.2 of stringprep;
 *   the two only differ for characters added after 3.2),
 * - prohibited output C.2.1, C.2.2 (controls), C.3 (private use), C.4 (non-characters),
 *   C.5 (lone surrogates), C.6, C.7, C.8, C.9.
 * Not covered (honestly): the bidirectional check of RFC 3454 §6 (a string mixing RandALCat and
 * LCat characters is accepted here, a strict server may refuse it), and the unassigned-code-point
 * check, which RFC 5802 does not want anyway (SCRAM treats the password as a "query" string).
 */
import { SaslError } from "./errors.js";

// B.1: characters that are simply removed.
// biome-ignore lint/suspicious/noMisleadingCharacterClass: under /u each code point is matched on its own; the variation selectors and U+034F are listed on purpose.
const MAPPED_TO_NOTHING = /[\u00AD\u034F\u1806\u180B-\u180D\u200B-\u200D\u2060\uFE00-\uFE0F\uFEFF]/gu;
// C.1.2: non-ASCII space characters, mapped to U+0020.
const NON_ASCII_SPACE = /[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/gu;
// Everything stringprep C.2-C.9 prohibits (after mapping and NFKC).
const PROHIBITED = new RegExp(
  [
    "[\\u0000-\\u001F\\u007F]", // C.2.1 ASCII control
    "[\\u0080-\\u009F\\u06DD\\u070F\\u180E\\u200C\\u200D\\u2028\\u2029\\u2060-\\u2063\\u206A-\\u206F\\uFEFF\\uFFF9-\\uFFFC]", // C.2.2
    "[\\u{1D173}-\\u{1D17A}]", // C.2.2 (musical symbols)
    "[\\uE000-\\uF8FF\\u{F0000}-\\u{FFFFD}\\u{100000}-\\u{10FFFD}]", // C.3 private use
    "[\\uFDD0-\\uFDEF\\uFFFE\\uFFFF\\u{1FFFE}\\u{1FFFF}\\u{2FFFE}\\u{2FFFF}\\u{3FFFE}\\u{3FFFF}\\u{4FFFE}\\u{4FFFF}\\u{5FFFE}\\u{5FFFF}\\u{6FFFE}\\u{6FFFF}\\u{7FFFE}\\u{7FFFF}\\u{8FFFE}\\u{8FFFF}\\u{9FFFE}\\u{9FFFF}\\u{AFFFE}\\u{AFFFF}\\u{BFFFE}\\u{BFFFF}\\u{CFFFE}\\u{CFFFF}\\u{DFFFE}\\u{DFFFF}\\u{EFFFE}\\u{EFFFF}\\u{FFFFE}\\u{FFFFF}\\u{10FFFE}\\u{10FFFF}]", // C.4
    "\\p{Cs}", // C.5 lone surrogates (a well-formed JS string pair is one code point under /u)
    "[\\uFFF9-\\uFFFD]", // C.6
    "[\\u2FF0-\\u2FFB]", // C.7
    "[\\u0340\\u0341\\u200E\\u200F\\u202A-\\u202E\\u206A-\\u206F]", // C.8
    "[\\u{E0001}\\u{E0020}-\\u{E007F}]", // C.9 tagging
  ].join("|"),
  "u",
);
const PRINTABLE_ASCII = /^[\x20-\x7E]*$/;

/**
 * Prepares `value` for SCRAM/PLAIN. `field` names it in errors; the value itself, or the offending
 * character, never appears in an error (it may be part of a password).
 */
export function saslprep(value: string, field: "username" | "password" | "authzid"): string {
  if (typeof value !== "string")
    throw new SaslError("sasl_bad_credentials", `${field} must be a string`, { field, got: typeof value });
  // The overwhelmingly common case needs no work, and is by construction unchanged by every step.
  const out = PRINTABLE_ASCII.test(value)
    ? value
    : value.replace(MAPPED_TO_NOTHING, "").replace(NON_ASCII_SPACE, " ").normalize("NFKC");
  if (PROHIBITED.test(out))
    throw new SaslError("sasl_bad_credentials", `${field} contains a character SASLprep prohibits`, {
      field,
    });
  if (out.length === 0) throw new SaslError("sasl_bad_credentials", `${field} is empty (after SASLprep)`, { field });
  return out;
}

/** RFC 5802 saslname: "=" -> "=3D" and "," -> "=2C" (in that order, so the escapes are not escaped again). */
export function escapeSaslName(name: string): string {
  return name.replace(/=/g, "=3D").replace(/,/g, "=2C");
}
