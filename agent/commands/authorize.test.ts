import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Authorizer } from "./authorize.js";

describe("Authorizer", () => {
  const auth = new Authorizer([
    { jid: "Alice@IoT.test", commands: ["*"] },
    { jid: "ops.test", commands: ["status", "read"] },
    { jid: "bob@iot.test", commands: ["status"] },
    { jid: "bob@iot.test", commands: ["read"] },
    { jid: "bad@x/withresource", commands: ["*"] },
  ]);

  it("matches bare JIDs case-insensitively, whatever the resource", () => {
    assert.ok(auth.mayRun("alice@iot.test/gajim", "set-output"));
    assert.ok(auth.mayRun("ALICE@iot.test", "anything"));
    assert.ok(auth.isOperator("alice@iot.test/x"));
  });

  it("matches a whole domain, limited to its commands", () => {
    assert.ok(auth.mayRun("carol@ops.test/laptop", "status"));
    assert.ok(!auth.mayRun("carol@ops.test/laptop", "set-output"));
    assert.ok(!auth.mayRun("carol@sub.ops.test", "status"));
  });

  it("unions the grants of several matching rules", () => {
    assert.ok(auth.mayRun("bob@iot.test/a", "status"));
    assert.ok(auth.mayRun("bob@iot.test/a", "read"));
    assert.ok(!auth.mayRun("bob@iot.test/a", "set-output"));
  });

  it("grants nothing to strangers, servers, garbage, or rules with a resource", () => {
    assert.ok(!auth.isOperator("eve@evil.test/x"));
    assert.ok(!auth.isOperator("ops.test"), "a domain JID itself is a server, not an operator");
    assert.ok(!auth.isOperator(""));
    assert.ok(!auth.isOperator("a@b@c"));
    assert.ok(!auth.isOperator("bad@x/withresource"));
    assert.ok(!auth.isOperator("bad@x"));
  });
});
