/**
 * The command registry: each command is a declaration (node, name, typed parameters grouped in
 * stages, a handler). Forms are generated from the declaration and submissions are checked against
 * it, so a handler only ever sees values that passed validation, already converted to their types.
 *
 * One file per built-in command lives in ./builtin/; the ad-hoc protocol (./adhoc.ts) drives them.
 */
import { AgentError } from "../../kernel/errors.js";
import type { Logger } from "../../kernel/log.js";
import type { DataForm, FieldValue, FieldValues, FormField, FormOption } from "./forms.js";

/** Parameter kinds, each mapped to an XEP-0004 field type (+ XEP-0122 datatype where it helps clients). */
export type ParamType =
  | "boolean" // boolean field -> boolean
  | "integer" // text-single + xs:integer (+ range) -> number
  | "decimal" // text-single + xs:decimal (+ range) -> number
  | "text" // text-single (+ regex) -> string
  | "multiline" // text-multi -> string with "\n"
  | "secret" // text-private -> string, redacted in the audit log
  | "choice" // list-single -> string
  | "choices" // list-multi -> string[]
  | "jid"; // jid-single -> string

export interface Param {
  name: string;
  type: ParamType;
  label: string;
  desc?: string;
  required?: boolean;
  default?: string | number | boolean | string[];
  /** For choice/choices. */
  options?: FormOption[];
  /** For integer/decimal: XEP-0122 <range/>. */
  min?: number;
  max?: number;
  /** For text: XEP-0122 <regex/>; the whole value must match. */
  pattern?: string;
}

export type NoteType = "info" | "warn" | "error";
export interface Note {
  type: NoteType;
  text: string;
}

export interface CommandContext {
  /** The requester's full JID, as the server stamped it. */
  requester: string;
  node: string;
  logger: Logger;
  /** Aborted when the handler timeout fires or the agent stops: long handlers should stop early. */
  signal: AbortSignal;
}

export interface StageContext extends CommandContext {
  /** Values accepted in the earlier stages. */
  values: Values;
}

export interface Stage {
  title?: string;
  instructions?: string;
  /** Static, or computed from earlier stages (e.g. stage 2 shows the chosen channel's current settings). */
  params: readonly Param[] | ((ctx: StageContext) => Promise<readonly Param[]> | readonly Param[]);
}

export interface CommandResult {
  /** Human-readable notes; a state-changing command says what changed here. */
  notes?: Note[];
  /** A type='result' form with the command's data. */
  form?: DataForm;
  /** Set when the command ran but failed: XEP-0050 then requires at least one error note. */
  failed?: boolean;
}

export interface CommandDefinition {
  /** The XEP-0050 node, also the name operators list in config (`operators[].commands`). */
  node: string;
  /** Label shown in the client's command menu. */
  name: string;
  description?: string;
  /** Zero stages: runs at once. One or more: a form per stage (execute/next/prev/complete). */
  stages?: readonly Stage[];
  /** Overrides commands.handlerTimeoutMs for this command (e.g. serial-command waits on the device). */
  timeoutMs?: number;
  run(ctx: CommandContext & { values: Values }): Promise<CommandResult>;
}

/** A handler bug (asking for a value with the wrong type): always a programming error, never user input. */
export class CommandDefinitionError extends AgentError {}

/** Validated values with typed getters, so handlers do not cast. */
export class Values {
  constructor(readonly raw: Readonly<FieldValues>) {}

  has(name: string): boolean {
    return this.raw[name] !== undefined;
  }
  string(name: string): string {
    return this.typed(name, "string") as string;
  }
  number(name: string): number {
    return this.typed(name, "number") as number;
  }
  boolean(name: string): boolean {
    return this.typed(name, "boolean") as boolean;
  }
  list(name: string): string[] {
    const v = this.raw[name];
    if (!Array.isArray(v)) throw this.bug(name, "a list", v);
    return v;
  }
  optionalString(name: string): string | undefined {
    return this.has(name) ? this.string(name) : undefined;
  }
  optionalNumber(name: string): number | undefined {
    return this.has(name) ? this.number(name) : undefined;
  }
  merge(more: FieldValues): Values {
    return new Values({ ...this.raw, ...more });
  }

  private typed(name: string, type: "string" | "number" | "boolean"): FieldValue {
    const v = this.raw[name];
    if (typeof v !== type) throw this.bug(name, `a ${type}`, v);
    return v!;
  }
  private bug(name: string, wanted: string, got: unknown): CommandDefinitionError {
    return new CommandDefinitionError("command_value_type", `value ${name} is not ${wanted}`, {
      field: name,
      got: got === undefined ? "missing" : typeof got,
    });
  }
}

export function paramToField(p: Param): FormField {
  const f: FormField = { var: p.name, label: p.label, values: defaultValues(p) };
  if (p.desc !== undefined) f.desc = p.desc;
  // A boolean always has a value: an unticked box is false. Clients send an untouched one with no
  // value (Gajim 1.7, profanity 0.13), so booleans carry a default and are never "required".
  if (p.type === "boolean" && f.values.length === 0) f.values = ["0"];
  if (p.required && p.type !== "boolean") f.required = true;
  switch (p.type) {
    case "boolean":
      f.type = "boolean";
      break;
    case "integer":
    case "decimal":
      f.type = "text-single";
      f.validate = { datatype: p.type === "integer" ? "xs:integer" : "xs:decimal" };
      if (p.min !== undefined || p.max !== undefined)
        f.validate.range = {
          ...(p.min !== undefined ? { min: p.min } : {}),
          ...(p.max !== undefined ? { max: p.max } : {}),
        };
      break;
    case "text":
      f.type = "text-single";
      if (p.pattern !== undefined) f.validate = { datatype: "xs:string", regex: p.pattern };
      break;
    case "multiline":
      f.type = "text-multi";
      break;
    case "secret":
      f.type = "text-private";
      break;
    case "choice":
      f.type = "list-single";
      f.options = p.options ?? [];
      break;
    case "choices":
      f.type = "list-multi";
      f.options = p.options ?? [];
      break;
    case "jid":
      f.type = "jid-single";
      break;
  }
  return f;
}

function defaultValues(p: Param): string[] {
  const d = p.default;
  if (d === undefined) return [];
  if (Array.isArray(d)) return d;
  if (typeof d === "boolean") return [d ? "1" : "0"];
  if (p.type === "multiline" && typeof d === "string") return d.split("\n");
  return [String(d)];
}

/** Names of secret parameters, whose values the audit log must never hold. */
export function secretNames(params: readonly Param[]): string[] {
  return params.filter((p) => p.type === "secret").map((p) => p.name);
}

/** XEP-0050 leaves node syntax free; we keep it to what fits a config list and a URI query. */
const NODE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/;

export class CommandRegistry {
  private readonly commands = new Map<string, CommandDefinition>();

  register(def: CommandDefinition): this {
    if (!NODE_PATTERN.test(def.node))
      throw new CommandDefinitionError("command_bad_node", `invalid command node ${JSON.stringify(def.node)}`, {
        node: def.node,
      });
    // XEP-0050 §4.2: "It is the responsibility of the responder implementation to ensure each command's node is unique".
    if (this.commands.has(def.node))
      throw new CommandDefinitionError("command_duplicate", `command ${def.node} is registered twice`, {
        node: def.node,
      });
    this.commands.set(def.node, def);
    return this;
  }

  get(node: string): CommandDefinition | undefined {
    return this.commands.get(node);
  }

  list(): CommandDefinition[] {
    return [...this.commands.values()];
  }
}

/** Resolves a stage's parameters (static or computed from earlier values). */
export async function stageParams(stage: Stage, ctx: StageContext): Promise<readonly Param[]> {
  return typeof stage.params === "function" ? await stage.params(ctx) : stage.params;
}

/** A note saying what a state-changing command changed, in one consistent wording. */
export function changedNote(what: string, from: unknown, to: unknown): Note {
  const show = (v: unknown) => (v === undefined ? "unset" : typeof v === "string" ? v : JSON.stringify(v));
  return { type: "info", text: `Changed ${what}: ${show(from)} -> ${show(to)}` };
}

/** A type='result' form of label/value pairs, the usual shape of a command's answer. */
export function resultForm(
  title: string,
  rows: ReadonlyArray<[name: string, label: string, value: unknown]>,
): DataForm {
  return {
    type: "result",
    title,
    fields: rows.map(([name, label, value]) => ({
      var: name,
      label,
      type: "text-single",
      values: [value === undefined || value === null ? "" : typeof value === "string" ? value : JSON.stringify(value)],
    })),
  };
}
