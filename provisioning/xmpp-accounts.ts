/**
 * The fleet's account backend over an authenticated admin session: each operation is one
 * xmpp-admin.ts call (XEP-0133, the invite ad-hoc command, the device's rotate-credentials).
 */
import type { SessionPort } from "./session-port.js";
import type { AccountBackend } from "./usecases/accounts.js";
import {
  type AdhocOptions,
  addUser,
  changeUserPassword,
  createAccountInvite,
  deleteUser,
  disableUser,
  endUserSession,
  onlineUsers,
  requestDeviceRotation,
} from "./xmpp-admin.js";

export function xmppAccounts(session: SessionPort, opts: AdhocOptions = {}): AccountBackend {
  return {
    createInvite: (domain) => createAccountInvite(session, domain, opts),
    addUser: (jid, password) => addUser(session, jid, password, opts),
    setPassword: (jid, password) => changeUserPassword(session, jid, password, opts),
    disableUser: (jid) => disableUser(session, jid, opts),
    endSessions: (jid) => endUserSession(session, jid, opts),
    deleteUser: (jid) => deleteUser(session, jid, opts),
    onlineUsers: (domain) => onlineUsers(session, domain, opts),
    requestRotation: async (fullJid) => (await requestDeviceRotation(session, fullJid, opts)).notes.map((n) => n.text),
  };
}
