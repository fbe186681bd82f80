import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { redactSecretFields, redactValues, secretVars } from "./redact.js";

describe("what of a command request may be written down", () => {
  it("redacts the values of text-private fields, and drops unset ones", () => {
    const secrets = secretVars([
      { var: "pin", type: "text-private", values: [] },
      { var: "output", type: "list-single", values: [] },
      { type: "fixed", values: ["no var"] },
    ]);
    assert.deepEqual([...secrets], ["pin"]);
    assert.deepEqual(redactValues({ output: "relay", pin: "4321", pulseMs: undefined, on: false }, secrets), {
      output: "relay",
      pin: "[redacted]",
      on: false,
    });
  });

  it("redacts fields whose name says secret in raw request XML, and nothing else", () => {
    const xml =
      `<x xmlns="jabber:x:data" type="submit"><field var="output"><value>relay</value></field>` +
      `<field var='newPassword' type="text-private"><value>hunter2</value></field>` +
      `<field var="pin"><value>4321</value><value>5678</value></field>` +
      `<field var="api_token"><value>t0k</value></field><field var="sshKey"><value>k</value></field></x>`;
    const out = redactSecretFields(xml);
    for (const secret of ["hunter2", "4321", "5678", "t0k", ">k<"]) assert.ok(!out.includes(secret), secret);
    assert.match(out, /<field var="output"><value>relay<\/value><\/field>/);
    assert.match(out, /<field var='newPassword' type="text-private">\[redacted\]<\/field>/);
  });
});
