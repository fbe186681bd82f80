import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Element, parse } from "ltx";
import { isProvisioningError } from "./errors.js";
import { FakeSession, iqError } from "../xmpp/testing/index.js";
import { NS_COMMANDS } from "./xmpp-admin.js";
import { xmppAccounts } from "./xmpp-accounts.js";

/** Answers like Prosody: a form for admin commands, then "completed" with the given notes. */
function server(notes = "<note type='info'>ok</note>"): FakeSession {
  return new FakeSession((iq: Element) => {
    const cmd = iq.getChild("command", NS_COMMANDS)!;
    const node = String(cmd.attrs.node);
    if (node.endsWith("#disable-user")) throw iqError("item-not-found");
    const body =
      cmd.attrs.action === "execute" && node.startsWith("http://jabber.org/protocol/admin#")
        ? `<command xmlns="${NS_COMMANDS}" node="${node}" sessionid="s" status="executing"><x xmlns="jabber:x:data" type="form"/></command>`
        : `<command xmlns="${NS_COMMANDS}" node="${node}" status="completed">${notes}</command>`;
    return parse(`<iq type="result">${body}</iq>`) as Element;
  });
}

const target = (s: FakeSession) =>
  s.requests.map((iq) => `${iq.getChild("command", NS_COMMANDS)!.attrs.node} -> ${iq.attrs.to}`);

describe("the XMPP account backend", () => {
  it("runs each operation as its XEP-0133 command at the account's domain", async () => {
    const s = server();
    const a = xmppAccounts(s, { timeoutMs: 1000 });
    await a.addUser("d1@iot.test", "pw");
    await a.setPassword("d1@iot.test", "pw2");
    await a.endSessions("d1@iot.test");
    await a.deleteUser("d1@iot.test");
    const admin = "http://jabber.org/protocol/admin";
    assert.deepEqual(
      [...new Set(target(s))],
      [
        `${admin}#add-user -> iot.test`,
        `${admin}#change-user-password -> iot.test`,
        `${admin}#end-user-session -> iot.test`,
        `${admin}#delete-user -> iot.test`,
      ],
    );
  });

  it("disable-user missing on the server is adhoc_unsupported, as the revoke fallback expects", async () => {
    await assert.rejects(xmppAccounts(server()).disableUser("d1@iot.test"), (e: unknown) =>
      isProvisioningError(e, "adhoc_unsupported"),
    );
  });

  it("a device's rotation answers with the texts of its notes", async () => {
    const s = server("<note type='info'>Password rotated</note><note type='info'>session kept</note>");
    assert.deepEqual(await xmppAccounts(s).requestRotation("d1@iot.test/agent"), ["Password rotated", "session kept"]);
    assert.deepEqual(target(s), ["rotate-credentials -> d1@iot.test/agent"]);
  });
});
