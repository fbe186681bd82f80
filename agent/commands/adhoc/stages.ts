/**
 * A command's stages as XEP-0004 forms: the form sent for the current stage, and submissions
 * checked against one stage or against all of them. A stage's fields may be computed from earlier
 * values, so stages are always resolved in order.
 */
import type { Element } from "ltx";
import {
  type DataForm,
  type FieldProblem,
  type FieldValues,
  type FormField,
  formToElement,
  validateSubmission,
} from "../forms.js";
import { type CommandContext, type CommandDefinition, paramToField, stageParams, Values } from "../registry.js";
import { badValues, commandElement } from "./protocol.js";
import { secretVars } from "./redact.js";
import type { StoredSession } from "./session-store.js";

/** An open multi-stage session: where the requester is, and what it submitted so far. */
export interface CommandSession extends StoredSession {
  def: CommandDefinition;
  stages: number;
  /** Index of the stage whose form the requester holds. */
  stage: number;
  /** The fields sent for each stage reached so far. */
  fields: FormField[][];
  /** Raw submitted values per stage, to re-show them after `prev` ("MAY present remembered values"). */
  submitted: Array<Map<string, string[]> | undefined>;
  /** Accepted (typed) values per stage. */
  accepted: Array<FieldValues | undefined>;
}

/** The fields of stage `stage` of `def`, given the values accepted before it. */
export async function stageFields(
  def: CommandDefinition,
  stage: number,
  ctx: CommandContext,
  values: Values,
): Promise<FormField[]> {
  return (await stageParams(def.stages![stage]!, { ...ctx, values })).map(paramToField);
}

/** The values accepted in the stages up to the current one. */
export function acceptedValues(s: CommandSession): FieldValues {
  return Object.assign({}, ...s.accepted.slice(0, s.stage + 1).filter(Boolean));
}

/** The values accepted so far, typed for a stage's parameters or the handler. */
export function sessionValues(s: CommandSession): Values {
  return new Values(acceptedValues(s));
}

/** Every field a secret was asked in, over the stages reached. */
export function sessionSecrets(s: CommandSession): Set<string> {
  return secretVars(s.fields.flat());
}

/** The `executing` answer: the current stage's form, with the values remembered for it, and its actions. */
export function executingElement(s: CommandSession): Element {
  const stage = s.def.stages![s.stage]!;
  const last = s.stage === s.stages - 1;
  const el = commandElement(s.node, s.id, "executing");
  // "The <command/> SHOULD include an <actions/> element"; "The 'execute' attribute [...] MUST equal
  // one of the 'action' attribute values" and "SHOULD NOT specify a value that does not match one of the allowed actions".
  const actions = el.c("actions", { execute: last ? "complete" : "next" });
  if (s.stage > 0) actions.c("prev");
  if (!last) actions.c("next");
  if (last) actions.c("complete");
  const remembered = s.submitted[s.stage];
  const fields = s.fields[s.stage]!.map((f) =>
    f.var && remembered?.has(f.var) ? { ...f, values: remembered.get(f.var)! } : f,
  );
  el.cnode(
    formToElement({
      type: "form",
      title: stage.title ?? s.def.name,
      ...(stage.instructions ? { instructions: [stage.instructions] } : {}),
      fields,
    }),
  );
  return el;
}

/**
 * Validates `form` against the current stage's fields and stores the result. On bad values it
 * throws bad-payload and leaves the session as it was, so the requester can correct them.
 */
export function acceptStage(s: CommandSession, form: DataForm | undefined): void {
  const r = validateSubmission(s.fields[s.stage]!, form);
  if (!r.ok) throw badValues(r.problems);
  s.accepted[s.stage] = r.values;
  s.submitted[s.stage] = new Map((form?.fields ?? []).filter((f) => f.var).map((f) => [f.var!, f.values]));
  s.accepted.length = s.stage + 1; // later stages may depend on this one: recompute them
}

export interface CollectOptions {
  /** Stages [from, to) are validated. */
  from: number;
  to: number;
  /** Values accepted before `from`. */
  values: Values;
  /** One submission for all of them; none means defaults. */
  form: DataForm | undefined;
  /** Receives the vars of the secret fields met. */
  secrets: Set<string>;
  /** Submitted fields that belong to no stage are problems too (single-stage: a misspelt field in a script). */
  strict?: boolean;
}

/** Validates stages [from, to) against one submission, stage by stage, since a stage's fields may depend on earlier values. */
export async function collectStages(def: CommandDefinition, ctx: CommandContext, o: CollectOptions): Promise<Values> {
  const known = new Set<string>(["FORM_TYPE"]);
  let acc = o.values;
  for (let i = o.from; i < o.to; i++) {
    const fields = await stageFields(def, i, ctx, acc);
    for (const f of fields) if (f.var) known.add(f.var);
    for (const v of secretVars(fields)) o.secrets.add(v);
    const mine = o.form
      ? { ...o.form, fields: o.form.fields.filter((f) => f.var && fields.some((d) => d.var === f.var)) }
      : undefined;
    const r = validateSubmission(fields, mine);
    if (!r.ok) throw badValues(r.problems);
    acc = acc.merge(r.values);
  }
  if (o.strict) {
    const unknown = (o.form?.fields ?? []).filter((f) => f.var && f.type !== "fixed" && !known.has(f.var));
    if (unknown.length > 0)
      throw badValues(
        unknown.map((f) => ({ field: f.var!, message: `is not a field of ${def.node}` }) satisfies FieldProblem),
      );
  }
  return acc;
}
