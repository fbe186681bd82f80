import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Element, parse } from "ltx";
import { AgentError } from "../kernel/errors.js";
import { isProvisioningError } from "./errors.js";
import { FakeSession, iqError } from "../xmpp/testing/index.js";
import {
  addUser,
  changeOwnPassword,
  createAccountInvite,
  deleteUser,
  NS_COMMANDS,
  onlineUsers,
  tokenFromInviteUri,
} from "./xmpp-admin.js";

function reply(iq: Element, inner: string): Element {
  return parse(`<iq type="result" from="${iq.attrs.to}" id="x">${inner}</iq>`) as Element;
}

const formStage = (node: string) =>
  `<command xmlns="${NS_COMMANDS}" node="${node}" sessionid="s1" status="executing"><x xmlns="jabber:x:data" type="form"><field var="FORM_TYPE" type="hidden"><value>http://jabber.org/protocol/admin</value></field></x></command>`;

describe("XMPP admin operations", () => {
  it("creates an account invite and extracts its token", async () => {
    const s = new FakeSession((iq) =>
      reply(
        iq,
        `<command xmlns="${NS_COMMANDS}" node="urn:xmpp:invite#create-account" status="completed"><x xmlns="jabber:x:data" type="result"><field var="uri"><value>xmpp:iot.test?register;preauth=AbC123</value></field><field var="expire"><value>2026-01-17T00:00:00Z</value></field></x></command>`,
      ),
    );
    const invite = await createAccountInvite(s, "iot.test");
    assert.equal(invite.token, "AbC123");
    assert.equal(invite.expires, "2026-01-17T00:00:00Z");
    assert.equal(s.requests[0]!.attrs.to, "iot.test");
    assert.throws(
      () => tokenFromInviteUri("xmpp:iot.test?register"),
      (e: unknown) => isProvisioningError(e, "invite_invalid"),
    );
  });

  it("submits the XEP-0133 form and turns an error note into adhoc_failed", async () => {
    const s = new FakeSession((iq) => {
      const cmd = iq.getChild("command", NS_COMMANDS)!;
      if (cmd.attrs.action === "execute") return reply(iq, formStage(cmd.attrs.node));
      return reply(
        iq,
        `<command xmlns="${NS_COMMANDS}" node="${cmd.attrs.node}" status="completed"><note type="error">Account already exists</note></command>`,
      );
    });
    await assert.rejects(
      addUser(s, "d@iot.test", "pw"),
      (e: unknown) => isProvisioningError(e, "adhoc_failed") && /already exists/.test(e.message),
    );
    const submit = s.requests[1]!.getChild("command", NS_COMMANDS)!;
    assert.equal(submit.attrs.sessionid, "s1");
    assert.equal(submit.attrs.action, "complete");
    const fields = Object.fromEntries(
      submit
        .getChild("x")!
        .getChildren("field")
        .map((f) => [f.attrs.var, f.getChildren("value").map((v) => v.text())]),
    );
    assert.deepEqual(fields.accountjid, ["d@iot.test"]);
    assert.deepEqual(fields["password-verify"], ["pw"]);
  });

  it("reads Prosody's delete-user failure from its info note", async () => {
    const s = new FakeSession((iq) => {
      const cmd = iq.getChild("command", NS_COMMANDS)!;
      if (cmd.attrs.action === "execute") return reply(iq, formStage(cmd.attrs.node));
      return reply(
        iq,
        `<command xmlns="${NS_COMMANDS}" node="n" status="completed"><note type="info">The following accounts could not be deleted:\nd@iot.test</note></command>`,
      );
    });
    await assert.rejects(deleteUser(s, "d@iot.test"), (e: unknown) => isProvisioningError(e, "adhoc_failed"));
  });

  it("maps missing commands to adhoc_unsupported and refusals to adhoc_failed", async () => {
    const s = new FakeSession(() => Promise.reject(iqError("item-not-found")));
    await assert.rejects(onlineUsers(s, "iot.test"), (e: unknown) => isProvisioningError(e, "adhoc_unsupported"));
    s.responder = () => Promise.reject(iqError("forbidden", "auth"));
    await assert.rejects(
      onlineUsers(s, "iot.test"),
      (e: unknown) => isProvisioningError(e, "adhoc_failed") && /forbidden/.test(e.message),
    );
    s.responder = () => Promise.reject(new AgentError("iq_timeout", "t"));
    await assert.rejects(onlineUsers(s, "iot.test"), (e: unknown) => isProvisioningError(e, "xmpp_timeout"));
  });

  it("splits the online users list", async () => {
    const s = new FakeSession((iq) => {
      const cmd = iq.getChild("command", NS_COMMANDS)!;
      if (cmd.attrs.action === "execute") return reply(iq, formStage(cmd.attrs.node));
      return reply(
        iq,
        `<command xmlns="${NS_COMMANDS}" node="n" status="completed"><x xmlns="jabber:x:data" type="result"><field var="onlineuserjids"><value>a@iot.test/x\nb@iot.test/y</value></field></x></command>`,
      );
    });
    assert.deepEqual(await onlineUsers(s, "iot.test"), ["a@iot.test/x", "b@iot.test/y"]);
  });

  it("changes its own password with XEP-0077 and reports refusals", async () => {
    const s = new FakeSession((iq) => reply(iq, ""));
    await changeOwnPassword(s, "new-pw");
    const q = s.requests[0]!.getChild("query", "jabber:iq:register")!;
    assert.equal(q.getChildText("username"), "dev1");
    assert.equal(q.getChildText("password"), "new-pw");
    s.responder = () => Promise.reject(iqError("not-authorized"));
    await assert.rejects(changeOwnPassword(s, "x"), (e: unknown) => isProvisioningError(e, "register_refused"));
    s.jid = undefined;
    await assert.rejects(changeOwnPassword(s, "x"), (e: unknown) => isProvisioningError(e, "xmpp_stream"));
  });
});
