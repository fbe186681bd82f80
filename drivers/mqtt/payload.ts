/**
 * Payload decoding for MQTT devices, written for the hot path: no exceptions for bad data (a flood
 * of garbage must cost a counter increment, not a stack trace), results say what was wrong.
 */
export type Extracted =
  | { ok: true; value: number }
  | { ok: false; reason: "malformed" | "wrong_type" | "missing"; detail: string };

export type PathSegment = string | number;

/** `a.b[0].c` -> ["a", "b", 0, "c"]. The config schema already checked the syntax. */
export function parsePath(path: string): PathSegment[] {
  const out: PathSegment[] = [];
  for (const part of path.split(".")) {
    const m = /^([^[]+)((?:\[\d+\])*)$/.exec(part);
    if (!m) {
      out.push(part);
      continue;
    }
    out.push(m[1]!);
    for (const idx of m[2]!.matchAll(/\[(\d+)\]/g)) out.push(Number(idx[1]));
  }
  return out;
}

/** Parses JSON without throwing: undefined when malformed. */
export function tryParseJson(text: string): { ok: true; value: unknown } | { ok: false; detail: string } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return { ok: false, detail: (err as Error).message };
  }
}

export function walk(value: unknown, path: readonly PathSegment[]): unknown {
  let cur = value;
  for (const seg of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    if (typeof seg === "number") {
      if (!Array.isArray(cur)) return undefined;
      cur = cur[seg];
    } else {
      if (Array.isArray(cur) || !Object.hasOwn(cur, seg)) return undefined;
      cur = (cur as Record<string, unknown>)[seg];
    }
  }
  return cur;
}

const TRUE_WORDS = new Set(["on", "true"]);
const FALSE_WORDS = new Set(["off", "false"]);

/**
 * A device value as a number: finite numbers as they are, booleans and ON/OFF/true/false as 1/0,
 * numeric strings parsed. Anything else is a wrong type.
 */
export function toNumber(v: unknown): Extracted {
  if (typeof v === "number") {
    return Number.isFinite(v) ? { ok: true, value: v } : { ok: false, reason: "wrong_type", detail: "not finite" };
  }
  if (typeof v === "boolean") return { ok: true, value: v ? 1 : 0 };
  if (typeof v === "string") {
    const t = v.trim();
    const lower = t.toLowerCase();
    if (TRUE_WORDS.has(lower)) return { ok: true, value: 1 };
    if (FALSE_WORDS.has(lower)) return { ok: true, value: 0 };
    if (t !== "" && /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/.test(t)) return { ok: true, value: Number(t) };
    return { ok: false, reason: "wrong_type", detail: `string ${JSON.stringify(t.slice(0, 40))} is not a number` };
  }
  if (v === undefined) return { ok: false, reason: "missing", detail: "no value at that path" };
  return { ok: false, reason: "wrong_type", detail: `${v === null ? "null" : Array.isArray(v) ? "a list" : typeof v}` };
}

/** Extracts a numeric value from a payload: JSON path when given, otherwise the plain payload. */
export function extractValue(text: string, path: readonly PathSegment[] | undefined, parsed?: unknown): Extracted {
  if (path === undefined) return toNumber(text);
  let doc = parsed;
  if (doc === undefined) {
    const j = tryParseJson(text);
    if (!j.ok) return { ok: false, reason: "malformed", detail: j.detail };
    doc = j.value;
  }
  return toNumber(walk(doc, path));
}

/** A state value as a string for comparison with stateOn/stateOff (JSON path or whole payload). */
export function extractState(text: string, path: readonly PathSegment[] | undefined): string | undefined {
  if (path === undefined) return text.trim();
  const j = tryParseJson(text);
  if (!j.ok) return undefined;
  const v = walk(j.value, path);
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return undefined;
}
