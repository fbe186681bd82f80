/**
 * A small schema language for the agent's YAML config: each validator checks one value, records
 * every problem with the path of the offending key (not just the first), fills defaults, and
 * infers the TypeScript type of the result. Unknown keys are errors, because a misspelt key that is
 * silently ignored on a device in the field is worse than a refusal to start.
 *
 * Rooms own their sections (drivers/ owns `board`, agent/telemetry owns `telemetry`, ...) and
 * agent/config/schema.ts composes them.
 */
export type Path = ReadonlyArray<string | number>;
export interface Issue {
  path: Path;
  message: string;
}

export const INVALID: unique symbol = Symbol("invalid");
export type Invalid = typeof INVALID;

export class Ctx {
  constructor(
    readonly path: Path = [],
    readonly issues: Issue[] = [],
  ) {}
  at(key: string | number): Ctx {
    return new Ctx([...this.path, key], this.issues);
  }
  fail(message: string): Invalid {
    this.issues.push({ path: this.path, message });
    return INVALID;
  }
}

export interface Schema<T> {
  readonly describe: string;
  /** For mappings: the schema of each key (used to document and check the config reference). */
  readonly shape?: Readonly<Record<string, Schema<unknown>>>;
  /** For free-form mappings (record): the schema of each value. */
  readonly values?: Schema<unknown>;
  /** Present when a missing key takes this value. */
  readonly defaultValue?: () => T;
  readonly optional?: boolean;
  parse(value: unknown, ctx: Ctx): T | Invalid;
}

export type Infer<S> = S extends Schema<infer T> ? T : never;

export function formatPath(path: Path): string {
  if (path.length === 0) return "(root)";
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)).join("");
}

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  return `${typeof v} ${JSON.stringify(v)}`;
}

export function str(
  opts: { pattern?: RegExp; patternHint?: string; minLength?: number; maxLength?: number } = {},
): Schema<string> {
  return {
    describe: "a string",
    parse(v, ctx) {
      // YAML turns `port: 5222` or `id: 0042` into numbers; accept them where a string is meant.
      if (typeof v === "number" && Number.isFinite(v)) v = String(v);
      if (typeof v !== "string") return ctx.fail(`must be a string, got ${typeName(v)}`);
      if (opts.minLength !== undefined && v.length < opts.minLength)
        return ctx.fail(`must be at least ${opts.minLength} characters`);
      if (opts.maxLength !== undefined && v.length > opts.maxLength)
        return ctx.fail(`must be at most ${opts.maxLength} characters`);
      if (opts.pattern && !opts.pattern.test(v))
        return ctx.fail(`must be ${opts.patternHint ?? `like ${opts.pattern.source}`}, got ${JSON.stringify(v)}`);
      return v;
    },
  };
}

export function int(opts: { min?: number; max?: number } = {}): Schema<number> {
  return num({ ...opts, integer: true });
}

export function num(opts: { min?: number; max?: number; integer?: boolean } = {}): Schema<number> {
  const what = opts.integer ? "a whole number" : "a number";
  return {
    describe: what,
    parse(v, ctx) {
      if (typeof v !== "number" || !Number.isFinite(v)) return ctx.fail(`must be ${what}, got ${typeName(v)}`);
      if (opts.integer && !Number.isInteger(v)) return ctx.fail(`must be ${what}, got ${v}`);
      if (opts.min !== undefined && v < opts.min) return ctx.fail(`must be >= ${opts.min}, got ${v}`);
      if (opts.max !== undefined && v > opts.max) return ctx.fail(`must be <= ${opts.max}, got ${v}`);
      return v;
    },
  };
}

export function bool(): Schema<boolean> {
  return {
    describe: "true or false",
    parse(v, ctx) {
      if (typeof v !== "boolean") return ctx.fail(`must be true or false, got ${typeName(v)}`);
      return v;
    },
  };
}

export function oneOf<const T extends string>(values: readonly T[]): Schema<T> {
  return {
    describe: `one of ${values.join(", ")}`,
    parse(v, ctx) {
      if (typeof v !== "string" || !(values as readonly string[]).includes(v))
        return ctx.fail(`must be one of ${values.map((x) => JSON.stringify(x)).join(", ")}, got ${typeName(v)}`);
      return v as T;
    },
  };
}

export function arr<T>(item: Schema<T>, opts: { minItems?: number; maxItems?: number } = {}): Schema<T[]> {
  return {
    describe: `a list of ${item.describe}`,
    parse(v, ctx) {
      if (!Array.isArray(v)) return ctx.fail(`must be a list, got ${typeName(v)}`);
      if (opts.minItems !== undefined && v.length < opts.minItems)
        return ctx.fail(`needs at least ${opts.minItems} entries`);
      if (opts.maxItems !== undefined && v.length > opts.maxItems)
        return ctx.fail(`takes at most ${opts.maxItems} entries`);
      const out: T[] = [];
      let bad = false;
      v.forEach((el, i) => {
        const r = item.parse(el, ctx.at(i));
        if (r === INVALID) bad = true;
        else out.push(r);
      });
      return bad ? INVALID : out;
    },
  };
}

/** A key that may be absent; the result is then `undefined`. */
export function opt<T>(schema: Schema<T>): Schema<T | undefined> {
  return {
    ...schema,
    optional: true,
    parse: (v, ctx) => (v === undefined || v === null ? undefined : schema.parse(v, ctx)),
  };
}

/** A key that takes `value` when absent. */
export function def<T>(schema: Schema<T>, value: T): Schema<T> {
  return { ...schema, defaultValue: () => structuredClone(value) };
}

type Shape = Record<string, Schema<unknown>>;
export type InferShape<S extends Shape> = { [K in keyof S]: Infer<S[K]> };

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Parses the keys of `shape` out of `input` (absent ones take their default), recording each problem. */
function parseFields(
  shape: Shape,
  input: Record<string, unknown>,
  ctx: Ctx,
  missing: (key: string, field: Schema<unknown>) => string,
): Record<string, unknown> | Invalid {
  const out: Record<string, unknown> = {};
  let bad = false;
  for (const [key, field] of Object.entries(shape)) {
    const raw = input[key];
    if (raw === undefined || raw === null) {
      if (field.defaultValue) out[key] = field.defaultValue();
      else if (field.optional) out[key] = undefined;
      else {
        ctx.at(key).fail(missing(key, field));
        bad = true;
      }
      continue;
    }
    const r = field.parse(raw, ctx.at(key));
    if (r === INVALID) bad = true;
    else out[key] = r;
  }
  return bad ? INVALID : out;
}

const unknownKey = (known: readonly string[]) => `unknown key (expected one of: ${known.join(", ")})`;

export function obj<S extends Shape>(
  shape: S,
  opts: { check?: (v: InferShape<S>, ctx: Ctx) => void } = {},
): Schema<InferShape<S>> {
  const schema: Schema<InferShape<S>> = {
    describe: "a mapping",
    shape,
    // A section whose every key has a default may be left out entirely.
    ...(Object.values(shape).every((s) => s.defaultValue || s.optional)
      ? { defaultValue: () => schema.parse({}, new Ctx()) as InferShape<S> }
      : {}),
    parse(v, ctx) {
      if (v === undefined || v === null) v = {};
      if (!isMapping(v)) return ctx.fail(`must be a mapping, got ${typeName(v)}`);
      let bad = false;
      for (const key of Object.keys(v)) {
        if (!(key in shape)) {
          ctx.at(key).fail(unknownKey(Object.keys(shape)));
          bad = true;
        }
      }
      const out = parseFields(shape, v, ctx, (_key, field) => `is required (${field.describe})`);
      if (bad || out === INVALID) return INVALID;
      const result = out as InferShape<S>;
      if (opts.check) {
        const before = ctx.issues.length;
        opts.check(result, ctx);
        if (ctx.issues.length > before) return INVALID;
      }
      return result;
    },
  };
  return schema;
}

type Variants = Record<string, Shape>;
type Flat<T> = { [K in keyof T]: T[K] };
type KeysOf<V extends Variants> = { [T in keyof V]: keyof V[T] }[keyof V] & string;
/**
 * One case of a tagged mapping: its tag, its own keys, and the other cases' keys typed as absent,
 * so code may still ask `c.sensor` of any channel (undefined unless it is a serial one) and a
 * check on the tag narrows to the keys that case has.
 */
export type InferVariant<K extends string, V extends Variants, T extends keyof V & string> = Flat<
  { [P in K]: T } & InferShape<V[T]> & { [P in Exclude<KeysOf<V>, K | keyof V[T]>]?: undefined }
>;
export type InferTagged<K extends string, V extends Variants> = {
  [T in keyof V & string]: InferVariant<K, V, T>;
}[keyof V & string];

function wordList(words: readonly string[]): string {
  return words.length <= 1 ? (words[0] ?? "") : `${words.slice(0, -1).join(", ")} and ${words.at(-1)}`;
}

/**
 * A mapping whose `key` (e.g. `source`) picks which other keys it takes: each case has its own
 * shape, and the result is a discriminated union on `key`. A key of another case is refused naming
 * the cases it belongs to ("applies to serial channels only"), a key of no case as unknown, a
 * missing key of the chosen case as "is required for a gpio output". `shape` is every case's keys
 * together (the tag first), so the config reference documents them like an obj's.
 */
export function tagged<const K extends string, V extends Variants>(
  key: K,
  variants: V,
  opts: {
    /** What one entry is, in messages: "output" gives "a gpio output", "serial outputs". */
    noun: string;
    /** Where "a"/"an" by first letter reads wrong: `{ mqtt: "an" }`. */
    article?: Partial<Record<keyof V & string, "a" | "an">>;
  },
): Schema<InferTagged<K, V>> {
  const tags = Object.keys(variants) as Array<keyof V & string>;
  const tagSchema = oneOf(tags);
  const shape: Shape = { [key]: tagSchema };
  for (const own of Object.values(variants)) for (const [k, s] of Object.entries(own)) if (!(k in shape)) shape[k] = s;
  const allKeys = Object.keys(shape);
  const article = (t: keyof V & string) => opts.article?.[t] ?? (/^[aeiou]/i.test(t) ? "an" : "a");
  // A missing mapping is named by the keys it needs ("mqtt.topic at least"), not as "a mapping".
  const hint = (k: string, field: Schema<unknown>): string => {
    const needed = Object.entries(field.shape ?? {}).filter(([, s]) => !s.defaultValue && !s.optional);
    return needed.length === 0 ? field.describe : `${needed.map(([sub]) => `${k}.${sub}`).join(", ")} at least`;
  };
  return {
    describe: `a mapping with ${key}: ${tags.join(" | ")}`,
    shape,
    parse(v, ctx) {
      if (v === undefined || v === null) v = {};
      if (!isMapping(v)) return ctx.fail(`must be a mapping, got ${typeName(v)}`);
      const input = v;
      const raw = input[key];
      const tag =
        raw === undefined || raw === null
          ? ctx.at(key).fail(`is required (${tagSchema.describe}; it decides which other keys apply)`)
          : tagSchema.parse(raw, ctx.at(key));
      if (tag === INVALID) {
        // Without a case only the keys no case knows can be judged.
        for (const k of Object.keys(input)) if (!(k in shape)) ctx.at(k).fail(unknownKey(allKeys));
        return INVALID;
      }
      // The tag passed oneOf(keys of variants), so its case exists.
      const own = variants[tag]!;
      let bad = false;
      for (const k of Object.keys(input)) {
        if (k === key || k in own) continue;
        const owners = Object.entries(variants).flatMap(([t, fields]) => (k in fields ? [t] : []));
        ctx
          .at(k)
          .fail(
            owners.length > 0
              ? `applies to ${wordList(owners)} ${opts.noun}s only`
              : unknownKey([key, ...Object.keys(own)]),
          );
        bad = true;
      }
      const out = parseFields(
        own,
        input,
        ctx,
        (k, field) => `is required for ${article(tag)} ${tag} ${opts.noun} (${hint(k, field)})`,
      );
      if (bad || out === INVALID) return INVALID;
      return { [key]: tag, ...out } as InferTagged<K, V>;
    },
  };
}

/** A mapping from free-form names to values of one schema (e.g. channels keyed by id). */
export function record<T>(value: Schema<T>, opts: { keyPattern?: RegExp } = {}): Schema<Record<string, T>> {
  return {
    describe: `a mapping of ${value.describe}`,
    values: value as Schema<unknown>,
    defaultValue: () => ({}),
    parse(v, ctx) {
      if (typeof v !== "object" || v === null || Array.isArray(v))
        return ctx.fail(`must be a mapping, got ${typeName(v)}`);
      const out: Record<string, T> = {};
      let bad = false;
      for (const [k, raw] of Object.entries(v)) {
        if (opts.keyPattern && !opts.keyPattern.test(k)) {
          ctx.at(k).fail(`is not a valid name (must match ${opts.keyPattern.source})`);
          bad = true;
          continue;
        }
        const r = value.parse(raw, ctx.at(k));
        if (r === INVALID) bad = true;
        else out[k] = r;
      }
      return bad ? INVALID : out;
    },
  };
}

/** Runs `schema` then a refinement that may record issues or transform the value. */
export function refine<T, U = T>(schema: Schema<T>, fn: (v: T, ctx: Ctx) => U | Invalid): Schema<U> {
  return {
    describe: schema.describe,
    ...(schema.optional ? { optional: true } : {}),
    parse(v, ctx) {
      const r = schema.parse(v, ctx);
      return r === INVALID ? INVALID : fn(r, ctx);
    },
  } as Schema<U>;
}

/** A bare JID (local@domain) or a full JID; checked loosely here, strictly by the JID parser later. */
export const JID_PATTERN = /^(?:[^@/\s"&'<>:]+@)?[^@/\s]+(?:\/.+)?$/;
export const BARE_JID_PATTERN = /^(?:[^@/\s"&'<>:]+@)?[^@/\s]+$/;
export const HOST_PORT_PATTERN = /^(?:\[[0-9a-fA-F:]+\]|[^\s:[\]]+):\d{1,5}$/;

export function jid(): Schema<string> {
  return str({ pattern: JID_PATTERN, patternHint: "a JID like device@example.org" });
}
export function bareJid(): Schema<string> {
  return str({ pattern: BARE_JID_PATTERN, patternHint: "a bare JID like operator@example.org (no /resource)" });
}
export function hostPort(): Schema<string> {
  return str({ pattern: HOST_PORT_PATTERN, patternHint: "host:port, e.g. 127.0.0.1:5222 or [::1]:5222" });
}
/** Durations are written in milliseconds in config files, keys end in `Ms`. */
export function ms(opts: { min?: number; max?: number } = {}): Schema<number> {
  return int({ min: opts.min ?? 0, max: opts.max ?? 7 * 24 * 3600 * 1000 });
}
export function bytes(opts: { min?: number; max?: number } = {}): Schema<number> {
  return int({ min: opts.min ?? 0, max: opts.max ?? Number.MAX_SAFE_INTEGER });
}
