/**
 * Fleet-admin operations over an authenticated XMPP session (SessionPort):
 * - XEP-0050 ad-hoc execution with the XEP-0004 form round trip,
 * - XEP-0401-style account invites (Prosody 0.12 mod_invites_adhoc: node urn:xmpp:invite#create-account),
 * - XEP-0133 service administration: add-user, change-user-password, delete-user, disable-user,
 *   end-user-session, get-online-users-list (Prosody 0.12 mod_admin_adhoc, ejabberd mod_configure),
 * - XEP-0077 password change of the session's own account,
 * - running the device's own `rotate-credentials` command.
 * Servers differ in how they report failure (Prosody answers "completed" with an error note, or for
 * delete-user only with an info text), so every result is checked, never assumed.
 */
import { Element } from "ltx";
import { isAgentError } from "../kernel/errors.js";
import { ProvisioningError } from "./errors.js";
import type { SessionPort } from "./session-port.js";

export const NS_COMMANDS = "http://jabber.org/protocol/commands";
export const NS_DATA = "jabber:x:data";
export const NS_REGISTER = "jabber:iq:register";
export const NS_ADMIN = "http://jabber.org/protocol/admin";
export const NODE_CREATE_ACCOUNT_INVITE = "urn:xmpp:invite#create-account";
export const NODE_ROTATE_CREDENTIALS = "rotate-credentials";
export const ADMIN_NODES = {
  addUser: `${NS_ADMIN}#add-user`,
  changeUserPassword: `${NS_ADMIN}#change-user-password`,
  deleteUser: `${NS_ADMIN}#delete-user`,
  disableUser: `${NS_ADMIN}#disable-user`,
  endUserSession: `${NS_ADMIN}#end-user-session`,
  onlineUsers: `${NS_ADMIN}#get-online-users-list`,
} as const;

export type FormValues = Record<string, string | string[]>;

export interface AdhocResult {
  status: string;
  notes: Array<{ type: string; text: string }>;
  /** Values of the result form, multi-valued fields as arrays. */
  values: Record<string, string[]>;
}

export interface AdhocOptions {
  timeoutMs?: number;
}

function commandOf(iq: Element): Element {
  const cmd = iq.getChild("command", NS_COMMANDS);
  if (!cmd) throw new ProvisioningError("adhoc_failed", "ad-hoc answer without a <command/> element");
  return cmd;
}

function readForm(cmd: Element): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  const form = cmd.getChild("x", NS_DATA);
  for (const field of form?.getChildren("field") ?? []) {
    const name = field.attrs.var as string | undefined;
    if (!name) continue;
    out[name] = field.getChildren("value").map((v) => v.text());
  }
  return out;
}

function resultOf(cmd: Element): AdhocResult {
  return {
    status: String(cmd.attrs.status ?? ""),
    notes: cmd.getChildren("note").map((n) => ({ type: String(n.attrs.type ?? "info"), text: n.text() })),
    values: readForm(cmd),
  };
}

function submitForm(values: FormValues, formType = NS_ADMIN): Element {
  const x = new Element("x", { xmlns: NS_DATA, type: "submit" });
  x.c("field", { var: "FORM_TYPE", type: "hidden" }).c("value").t(formType);
  for (const [name, v] of Object.entries(values)) {
    const field = x.c("field", { var: name });
    for (const one of Array.isArray(v) ? v : [v]) field.c("value").t(one);
  }
  return x;
}

/** Turns a session error into a ProvisioningError; "not there" conditions become adhoc_unsupported. */
function mapIqError(err: unknown, to: string, node: string): never {
  if (isAgentError(err, "iq_error")) {
    const condition = String(err.context.condition ?? "undefined-condition");
    const text = err.context.text as string | undefined;
    const unsupported = ["item-not-found", "feature-not-implemented", "service-unavailable"].includes(condition);
    throw new ProvisioningError(
      unsupported ? "adhoc_unsupported" : "adhoc_failed",
      unsupported
        ? `${to} does not offer the command ${node} (${condition})`
        : `${to} refused ${node}: ${condition}${text ? ` (${text})` : ""}`,
      { to, node, condition, ...(text ? { text } : {}) },
      { cause: err },
    );
  }
  if (isAgentError(err, "iq_timeout"))
    throw new ProvisioningError("xmpp_timeout", `${to} did not answer ${node} in time`, { to, node }, { cause: err });
  throw err;
}

/**
 * Executes an ad-hoc command; when `values` is given and the command asks for a form, submits it
 * (action=complete). Error notes become `adhoc_failed`.
 */
export async function executeAdhoc(
  session: SessionPort,
  to: string,
  node: string,
  values?: FormValues,
  opts: AdhocOptions = {},
): Promise<AdhocResult> {
  const ro = opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {};
  const first = new Element("iq", { type: "set", to })
    .c("command", { xmlns: NS_COMMANDS, node, action: "execute" })
    .root();
  let answer: Element;
  try {
    answer = await session.request(first, ro);
  } catch (err) {
    mapIqError(err, to, node);
  }
  let cmd = commandOf(answer);
  if (values !== undefined && cmd.attrs.status === "executing") {
    const formType = readForm(cmd).FORM_TYPE?.[0] ?? NS_ADMIN;
    const submit = new Element("iq", { type: "set", to })
      .c("command", { xmlns: NS_COMMANDS, node, sessionid: cmd.attrs.sessionid, action: "complete" })
      .cnode(submitForm(values, formType))
      .root();
    try {
      answer = await session.request(submit, ro);
    } catch (err) {
      mapIqError(err, to, node);
    }
    cmd = commandOf(answer);
  }
  const result = resultOf(cmd);
  const error = result.notes.find((n) => n.type === "error");
  if (error)
    throw new ProvisioningError("adhoc_failed", `${node} failed on ${to}: ${error.text}`, {
      to,
      node,
      note: error.text,
    });
  return result;
}

function domainOf(jid: string): string {
  const bare = jid.split("/")[0]!;
  return bare.includes("@") ? bare.slice(bare.indexOf("@") + 1) : bare;
}

export interface AccountInvite {
  token: string;
  uri: string;
  landingUrl?: string;
  expires?: string;
}

/** Extracts the preauth token from an XEP-0401 URI like xmpp:iot.test?register;preauth=TOKEN. */
export function tokenFromInviteUri(uri: string): string {
  const m = /[?;]preauth=([^;&\s]+)/.exec(uri);
  if (!m) throw new ProvisioningError("invite_invalid", `invite URI has no preauth token: ${uri}`, { uri });
  return decodeURIComponent(m[1]!);
}

/** Creates a one-time account invite on `host` (admin only on Prosody 0.12). */
export async function createAccountInvite(
  session: SessionPort,
  host: string,
  opts: AdhocOptions = {},
): Promise<AccountInvite> {
  const r = await executeAdhoc(session, host, NODE_CREATE_ACCOUNT_INVITE, undefined, opts);
  const uri = r.values.uri?.[0];
  if (!uri)
    throw new ProvisioningError("adhoc_failed", `${host} created no invite URI (is mod_invites loaded?)`, { host });
  const invite: AccountInvite = { token: tokenFromInviteUri(uri), uri };
  const url = r.values["landing-url"]?.[0];
  if (url) invite.landingUrl = url;
  const expires = r.values.expire?.[0];
  if (expires) invite.expires = expires;
  return invite;
}

export async function addUser(
  session: SessionPort,
  jid: string,
  password: string,
  opts: AdhocOptions = {},
): Promise<void> {
  await executeAdhoc(
    session,
    domainOf(jid),
    ADMIN_NODES.addUser,
    { accountjid: jid, password, "password-verify": password },
    opts,
  );
}

export async function changeUserPassword(
  session: SessionPort,
  jid: string,
  password: string,
  opts: AdhocOptions = {},
): Promise<void> {
  await executeAdhoc(session, domainOf(jid), ADMIN_NODES.changeUserPassword, { accountjid: jid, password }, opts);
}

/** Deletes the account. Prosody reports a failure only in an info note ("could not be deleted"). */
export async function deleteUser(session: SessionPort, jid: string, opts: AdhocOptions = {}): Promise<void> {
  const r = await executeAdhoc(session, domainOf(jid), ADMIN_NODES.deleteUser, { accountjids: [jid] }, opts);
  const failed = r.notes.find((n) => /could not be deleted|not exist|failed/i.test(n.text));
  if (failed) throw new ProvisioningError("adhoc_failed", `${jid} was not deleted: ${failed.text.trim()}`, { jid });
}

/** XEP-0133 disable-user. Neither Prosody 0.12 nor ejabberd 23.01 offer it: expect adhoc_unsupported there. */
export async function disableUser(session: SessionPort, jid: string, opts: AdhocOptions = {}): Promise<void> {
  await executeAdhoc(session, domainOf(jid), ADMIN_NODES.disableUser, { accountjids: [jid] }, opts);
}

export async function endUserSession(session: SessionPort, jid: string, opts: AdhocOptions = {}): Promise<void> {
  await executeAdhoc(session, domainOf(jid), ADMIN_NODES.endUserSession, { accountjids: [jid] }, opts);
}

/** Bare JIDs online on `host` (XEP-0133 get-online-users-list). */
export async function onlineUsers(session: SessionPort, host: string, opts: AdhocOptions = {}): Promise<string[]> {
  const r = await executeAdhoc(session, host, ADMIN_NODES.onlineUsers, { max_items: "all" }, opts);
  const raw = r.values.onlineuserjids ?? r.values.onlineusers ?? [];
  return raw
    .flatMap((v) => v.split("\n"))
    .map((s) => s.trim())
    .filter(Boolean);
}

/**
 * XEP-0077 §3.3: changes the password of the session's own account. On Prosody the changing
 * session stays up while the account's other sessions are closed ("reset").
 */
export async function changeOwnPassword(
  session: SessionPort,
  newPassword: string,
  opts: AdhocOptions = {},
): Promise<void> {
  const me = session.jid;
  if (!me) throw new ProvisioningError("xmpp_stream", "cannot change the password while offline");
  const bare = me.split("/")[0]!;
  const username = bare.slice(0, bare.indexOf("@"));
  const iq = new Element("iq", { type: "set", to: domainOf(bare) }).c("query", { xmlns: NS_REGISTER });
  iq.c("username").t(username);
  iq.c("password").t(newPassword);
  try {
    await session.request(iq.root(), opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {});
  } catch (err) {
    if (isAgentError(err, "iq_error"))
      throw new ProvisioningError(
        "register_refused",
        `the server refused the password change: ${err.context.condition}`,
        {
          condition: err.context.condition,
        },
        { cause: err },
      );
    throw err;
  }
}

/** Runs the device's `rotate-credentials` command (provisioning/device/rotation.ts) at its full JID. */
export async function requestDeviceRotation(
  session: SessionPort,
  deviceFullJid: string,
  opts: AdhocOptions = {},
): Promise<AdhocResult> {
  return executeAdhoc(session, deviceFullJid, NODE_ROTATE_CREDENTIALS, undefined, opts);
}
