/**
 * XEP-0004 data forms (https://xmpp.org/extensions/xep-0004.html) with the XEP-0122 validation
 * subset the agent needs (xs:string, xs:integer, xs:decimal, xs:boolean, <range/>, <regex/>).
 *
 * Three jobs, kept apart: encode a form to XML, parse a form out of XML (bounded, so a hostile form
 * cannot make us allocate without limit), and check a submitted form against the declaration we sent,
 * naming the field and the reason for every problem (the operator sees them as command notes).
 */
import { Element } from "ltx";
import { AgentError } from "../../kernel/errors.js";
import { JID_PATTERN } from "../../kernel/schema-dsl.js";

export const NS_DATA = "jabber:x:data";
export const NS_XDATA_VALIDATE = "http://jabber.org/protocol/xdata-validate";

/** Bounds applied when parsing a form received from the network. */
export const FORM_LIMITS = { maxFields: 200, maxValuesPerField: 100, maxValueChars: 4096, maxItems: 1000 } as const;

export type FormType = "form" | "submit" | "result" | "cancel";
export const FIELD_TYPES = [
  "boolean",
  "fixed",
  "hidden",
  "jid-multi",
  "jid-single",
  "list-multi",
  "list-single",
  "text-multi",
  "text-private",
  "text-single",
] as const;
export type FieldType = (typeof FIELD_TYPES)[number];
export type Datatype = "xs:string" | "xs:integer" | "xs:decimal" | "xs:boolean";

export interface FieldValidation {
  datatype: Datatype;
  /** XEP-0122 <range min max/>, as numbers for the numeric datatypes. */
  range?: { min?: number; max?: number };
  /** XEP-0122 <regex/>: the whole value must match. */
  regex?: string;
}

export interface FormOption {
  label?: string;
  value: string;
}

export interface FormField {
  /** Absent only on `fixed` fields (XEP-0004 §3.2: var MAY be omitted on fixed fields). */
  var?: string;
  /** Absent in submitted forms and in <reported/>; XEP-0004 treats a missing type as text-single. */
  type?: FieldType;
  label?: string;
  desc?: string;
  required?: boolean;
  values: string[];
  options?: FormOption[];
  validate?: FieldValidation;
}

export interface DataForm {
  type: FormType;
  title?: string;
  instructions?: string[];
  fields: FormField[];
  /** Multi-item results (a table): column declarations and one field list per row. */
  reported?: FormField[];
  items?: FormField[][];
}

/** A received form that is not a well-formed XEP-0004 form. `context.reason` says why. */
export class FormError extends AgentError {
  constructor(reason: string, context: Record<string, unknown> = {}) {
    super("form_malformed", `malformed data form: ${reason}`, { reason, ...context });
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding

export function formToElement(form: DataForm): Element {
  const x = new Element("x", { xmlns: NS_DATA, type: form.type });
  if (form.title !== undefined) x.c("title").t(form.title);
  for (const line of form.instructions ?? []) x.c("instructions").t(line);
  if (form.reported) {
    const reported = x.c("reported");
    for (const f of form.reported) reported.cnode(fieldToElement(f));
  }
  for (const row of form.items ?? []) {
    const item = x.c("item");
    for (const f of row) item.cnode(fieldToElement(f));
  }
  for (const f of form.fields) x.cnode(fieldToElement(f));
  return x;
}

export function fieldToElement(f: FormField): Element {
  const attrs: Record<string, string> = {};
  if (f.var !== undefined) attrs.var = f.var;
  if (f.type !== undefined) attrs.type = f.type;
  if (f.label !== undefined) attrs.label = f.label;
  const el = new Element("field", attrs);
  if (f.desc !== undefined) el.c("desc").t(f.desc);
  if (f.required) el.c("required");
  if (f.validate) {
    const v = el.c("validate", { xmlns: NS_XDATA_VALIDATE, datatype: f.validate.datatype });
    if (f.validate.range) {
      const r: Record<string, string> = {};
      if (f.validate.range.min !== undefined) r.min = String(f.validate.range.min);
      if (f.validate.range.max !== undefined) r.max = String(f.validate.range.max);
      v.c("range", r);
    } else if (f.validate.regex !== undefined) {
      v.c("regex").t(f.validate.regex);
    } else {
      v.c("basic");
    }
  }
  for (const value of f.values) el.c("value").t(value);
  for (const o of f.options ?? []) {
    const opt = el.c("option", o.label !== undefined ? { label: o.label } : {});
    opt.c("value").t(o.value);
  }
  return el;
}

// ---------------------------------------------------------------------------------------------
// Parsing

/** The first <x xmlns='jabber:x:data'/> child of `parent`, if any. */
export function findForm(parent: Element): Element | undefined {
  return parent.getChildElements().find((c) => c.name === "x" && c.attrs.xmlns === NS_DATA);
}

export function parseForm(x: Element): DataForm {
  if (x.name !== "x" || x.getNS() !== NS_DATA) throw new FormError("not an <x xmlns='jabber:x:data'/> element");
  const type = x.attrs.type as string | undefined;
  if (type !== "form" && type !== "submit" && type !== "result" && type !== "cancel")
    throw new FormError(`unknown form type ${JSON.stringify(type ?? null)}`);
  const form: DataForm = { type, fields: [] };
  const title = x.getChildText("title");
  if (title !== null) form.title = title;
  const instructions = x.getChildren("instructions").map((i) => i.text());
  if (instructions.length > 0) form.instructions = instructions;
  const fieldEls = x.getChildren("field");
  if (fieldEls.length > FORM_LIMITS.maxFields) throw new FormError(`more than ${FORM_LIMITS.maxFields} fields`);
  const seen = new Set<string>();
  for (const el of fieldEls) {
    const f = parseField(el);
    if (f.var !== undefined) {
      // XEP-0004 §3.2: the var "MUST be unique within the form" (fixed fields excepted).
      if (seen.has(f.var)) throw new FormError(`field ${JSON.stringify(f.var)} appears twice`, { field: f.var });
      seen.add(f.var);
    }
    form.fields.push(f);
  }
  const reported = x.getChild("reported");
  if (reported) form.reported = reported.getChildren("field").map(parseField);
  const items = x.getChildren("item");
  if (items.length > FORM_LIMITS.maxItems) throw new FormError(`more than ${FORM_LIMITS.maxItems} items`);
  if (items.length > 0) form.items = items.map((i) => i.getChildren("field").map(parseField));
  return form;
}

function parseField(el: Element): FormField {
  const attrs = el.attrs as Record<string, string | undefined>;
  const type = attrs.type;
  if (type !== undefined && !(FIELD_TYPES as readonly string[]).includes(type))
    throw new FormError(`field ${JSON.stringify(attrs.var ?? "")} has unknown type ${JSON.stringify(type)}`, {
      field: attrs.var,
    });
  if (attrs.var === undefined && type !== "fixed") throw new FormError("a field other than 'fixed' has no var");
  const valueEls = el.getChildren("value");
  if (valueEls.length > FORM_LIMITS.maxValuesPerField)
    throw new FormError(`field ${JSON.stringify(attrs.var)} has more than ${FORM_LIMITS.maxValuesPerField} values`, {
      field: attrs.var,
    });
  const values = valueEls.map((v) => {
    const text = v.text();
    if (text.length > FORM_LIMITS.maxValueChars)
      throw new FormError(`a value of field ${JSON.stringify(attrs.var)} exceeds ${FORM_LIMITS.maxValueChars} chars`, {
        field: attrs.var,
      });
    return text;
  });
  const f: FormField = { values };
  if (attrs.var !== undefined) f.var = attrs.var;
  if (type !== undefined) f.type = type as FieldType;
  if (attrs.label !== undefined) f.label = attrs.label;
  const desc = el.getChildText("desc");
  if (desc !== null) f.desc = desc;
  if (el.getChild("required")) f.required = true;
  const options = el.getChildren("option");
  if (options.length > 0)
    f.options = options.map((o) => {
      const opt: FormOption = { value: o.getChildText("value") ?? "" };
      if (o.attrs.label !== undefined) opt.label = String(o.attrs.label);
      return opt;
    });
  const validate = el.getChild("validate", NS_XDATA_VALIDATE);
  if (validate) f.validate = parseValidation(validate);
  return f;
}

function parseValidation(el: Element): FieldValidation {
  const raw = (el.attrs.datatype as string | undefined) ?? "xs:string";
  const datatype: Datatype =
    raw === "xs:integer" || raw === "xs:decimal" || raw === "xs:boolean" || raw === "xs:string" ? raw : "xs:string";
  const v: FieldValidation = { datatype };
  const range = el.getChild("range");
  if (range) {
    v.range = {};
    const min = Number(range.attrs.min);
    const max = Number(range.attrs.max);
    if (range.attrs.min !== undefined && Number.isFinite(min)) v.range.min = min;
    if (range.attrs.max !== undefined && Number.isFinite(max)) v.range.max = max;
  }
  const regex = el.getChildText("regex");
  if (regex !== null) v.regex = regex;
  return v;
}

// ---------------------------------------------------------------------------------------------
// Validation of a submission against the declaration we sent

/** The typed value of one field: numbers for xs:integer/xs:decimal, booleans for boolean fields,
 * string lists for *-multi lists and JIDs, strings otherwise (text-multi lines joined by "\n"). */
export type FieldValue = string | number | boolean | string[];
export type FieldValues = Record<string, FieldValue | undefined>;

export interface FieldProblem {
  field: string;
  label?: string;
  message: string;
}

export type ValidationResult = { ok: true; values: FieldValues } | { ok: false; problems: FieldProblem[] };

/** XML Schema xs:integer / xs:decimal lexical forms (XEP-0122 §3). */
const INTEGER = /^[+-]?\d+$/;
const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$/;

export function describeProblem(p: FieldProblem): string {
  return `Field '${p.field}'${p.label ? ` (${p.label})` : ""}: ${p.message}`;
}

/**
 * Checks `submitted` (a type='submit' form, or undefined when the requester sent none) against the
 * fields we declared. Every declared field gets a value (submitted, else the declared default) or a
 * problem; submitted fields we never declared are problems too, so a misspelt field in a script is
 * reported instead of silently ignored.
 */
export function validateSubmission(declared: readonly FormField[], submitted: DataForm | undefined): ValidationResult {
  const problems: FieldProblem[] = [];
  const values: FieldValues = {};
  const byVar = new Map<string, FormField>();
  for (const f of submitted?.fields ?? []) if (f.var !== undefined) byVar.set(f.var, f);
  const known = new Set<string>();

  for (const decl of declared) {
    if (decl.var === undefined || decl.type === "fixed") continue;
    known.add(decl.var);
    const sub = byVar.get(decl.var);
    const problem = (message: string) =>
      problems.push({ field: decl.var!, ...(decl.label !== undefined ? { label: decl.label } : {}), message });
    const raw = sub && !isBlank(sub.values, decl.type) ? sub.values : undefined;
    if (raw === undefined) {
      if (decl.values.length > 0 && !isBlank(decl.values, decl.type)) {
        // The declared default is ours and trusted, but it goes through the same conversion.
        const r = convert(decl, decl.values);
        if ("error" in r) problem(`default is invalid: ${r.error}`);
        else values[decl.var] = r.value;
      } else if (decl.type === "boolean")
        values[decl.var] = false; // absent box: not ticked
      else if (decl.required) problem("is required");
      else values[decl.var] = undefined;
      continue;
    }
    const r = convert(decl, raw);
    if ("error" in r) problem(r.error);
    else values[decl.var] = r.value;
  }

  for (const f of submitted?.fields ?? []) {
    if (f.var === undefined || known.has(f.var) || f.var === "FORM_TYPE" || f.type === "fixed") continue;
    const expected = [...known].join(", ");
    problems.push({ field: f.var, message: `is not a field of this form (expected ${expected || "no fields"})` });
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, values };
}

function isBlank(values: readonly string[], type: FieldType | undefined): boolean {
  if (values.length === 0) return true;
  // Clients submit an empty <value/> for a text field the user left empty.
  const multi = type === "list-multi" || type === "jid-multi" || type === "text-multi";
  return !multi && values.length === 1 && values[0]!.trim() === "";
}

function convert(decl: FormField, raw: readonly string[]): { value: FieldValue } | { error: string } {
  const type = decl.type ?? "text-single";
  const multi = type === "list-multi" || type === "jid-multi" || type === "text-multi";
  if (!multi && raw.length > 1) return { error: `takes one value, got ${raw.length}` };
  const allowed = decl.options?.map((o) => o.value);
  switch (type) {
    case "boolean":
      return parseBoolean(raw[0]!);
    case "list-single":
      if (allowed && !allowed.includes(raw[0]!))
        return { error: `must be one of ${allowed.join(", ")}, got ${JSON.stringify(raw[0])}` };
      return applyDatatype(decl, raw[0]!);
    case "list-multi": {
      const bad = allowed ? raw.filter((v) => !allowed.includes(v)) : [];
      if (bad.length > 0) return { error: `must be among ${allowed!.join(", ")}, got ${JSON.stringify(bad)}` };
      return { value: [...raw] };
    }
    case "jid-single":
      return JID_PATTERN.test(raw[0]!) ? { value: raw[0]! } : { error: `must be a JID, got ${JSON.stringify(raw[0])}` };
    case "jid-multi": {
      const bad = raw.filter((v) => !JID_PATTERN.test(v));
      return bad.length > 0 ? { error: `must be JIDs, got ${JSON.stringify(bad)}` } : { value: [...raw] };
    }
    case "text-multi":
      return { value: raw.join("\n") };
    default:
      return applyDatatype(decl, raw[0]!);
  }
}

function parseBoolean(v: string): { value: boolean } | { error: string } {
  // XEP-0004 §3.3: boolean values are "0"/"false" or "1"/"true".
  const t = v.trim();
  if (t === "1" || t === "true") return { value: true };
  if (t === "0" || t === "false") return { value: false };
  return { error: `must be true or false (1 or 0), got ${JSON.stringify(v)}` };
}

function applyDatatype(decl: FormField, v: string): { value: FieldValue } | { error: string } {
  const validate = decl.validate;
  if (!validate) return { value: v };
  switch (validate.datatype) {
    case "xs:boolean":
      return parseBoolean(v);
    case "xs:integer":
    case "xs:decimal": {
      const t = v.trim();
      const integer = validate.datatype === "xs:integer";
      if (!(integer ? INTEGER : DECIMAL).test(t))
        return { error: `must be ${integer ? "a whole number" : "a number"}, got ${JSON.stringify(v)}` };
      const n = Number(t);
      if (!Number.isFinite(n) || (integer && !Number.isSafeInteger(n)))
        return { error: `is out of range, got ${JSON.stringify(v)}` };
      const { min, max } = validate.range ?? {};
      if (min !== undefined && n < min) return { error: `must be >= ${min}, got ${n}` };
      if (max !== undefined && n > max) return { error: `must be <= ${max}, got ${n}` };
      return { value: n };
    }
    default: {
      if (validate.regex !== undefined) {
        let re: RegExp;
        try {
          re = new RegExp(`^(?:${validate.regex})$`, "u");
        } catch {
          return { error: "cannot be checked: the declared pattern is invalid" };
        }
        if (!re.test(v)) return { error: `must match ${validate.regex}, got ${JSON.stringify(v)}` };
      }
      return { value: v };
    }
  }
}
