import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parse } from "ltx";
import {
  type DataForm,
  type FormField,
  FormError,
  findForm,
  formToElement,
  NS_DATA,
  parseForm,
  validateSubmission,
} from "./forms.js";

const DECLARED: FormField[] = [
  { type: "hidden", var: "FORM_TYPE", values: ["urn:xmpp-iot-agent:cmd"] },
  { type: "fixed", values: ["Pick a value"] },
  {
    type: "list-single",
    var: "channel",
    label: "Channel",
    required: true,
    values: [],
    options: [{ value: "led" }, { label: "Relay", value: "relay" }],
  },
  {
    type: "text-single",
    var: "value",
    label: "Value",
    required: true,
    values: [],
    validate: { datatype: "xs:integer", range: { min: 0, max: 100 } },
  },
  {
    type: "text-single",
    var: "gain",
    values: ["1.5"],
    validate: { datatype: "xs:decimal", range: { min: 0 } },
  },
  { type: "boolean", var: "pulse", values: ["0"] },
  { type: "list-multi", var: "tags", values: [], options: [{ value: "a" }, { value: "b" }] },
  { type: "jid-single", var: "notify", values: [] },
  { type: "text-multi", var: "script", values: [] },
  { type: "text-private", var: "pin", values: [] },
];

function submit(fields: Record<string, string[]>): DataForm {
  return { type: "submit", fields: Object.entries(fields).map(([v, values]) => ({ var: v, values })) };
}

describe("data forms (XEP-0004)", () => {
  it("round-trips a form with options, required, desc and XEP-0122 validation", () => {
    const form: DataForm = { type: "form", title: "T", instructions: ["one", "two"], fields: DECLARED };
    const xml = formToElement(form).toString();
    assert.match(xml, /<validate xmlns="http:\/\/jabber.org\/protocol\/xdata-validate" datatype="xs:integer">/);
    assert.match(xml, /<range min="0" max="100"\/>/);
    const back = parseForm(parse(xml));
    assert.equal(back.title, "T");
    assert.deepEqual(back.instructions, ["one", "two"]);
    assert.deepEqual(back.fields, DECLARED);
  });

  it("round-trips a multi-item result (reported + items)", () => {
    const form: DataForm = {
      type: "result",
      fields: [],
      reported: [{ var: "id", label: "Id", values: [] }],
      items: [[{ var: "id", values: ["led"] }], [{ var: "id", values: ["relay"] }]],
    };
    const back = parseForm(parse(formToElement(form).toString()));
    assert.deepEqual(back.reported, form.reported);
    assert.deepEqual(back.items, form.items);
  });

  it("parses the submit form a Gajim-style client sends, with xmlns inherited and whitespace", () => {
    const iq =
      parse(`<iq xmlns="jabber:client" type="set" to="dev1@iot.test/agent" id="ab12a" from="alice@iot.test/gajim.X">
      <command xmlns="http://jabber.org/protocol/commands" node="set-output" sessionid="s1" action="complete">
        <x xmlns="jabber:x:data" type="submit">
          <field var="FORM_TYPE" type="hidden"><value>urn:xmpp-iot-agent:cmd</value></field>
          <field var="channel" type="list-single"><value>relay</value></field>
          <field var="value" type="text-single"><value>42</value></field>
          <field var="pulse" type="boolean"><value>true</value></field>
          <field var="tags" type="list-multi"><value>a</value><value>b</value></field>
          <field var="script" type="text-multi"><value>line 1</value><value>line 2</value></field>
          <field var="pin" type="text-private"><value>1234</value></field>
          <field var="notify" type="jid-single"><value>bob@iot.test</value></field>
        </x>
      </command>
    </iq>`);
    const x = findForm(iq.getChild("command")!);
    assert.ok(x);
    const r = validateSubmission(DECLARED, parseForm(x));
    assert.ok(r.ok, JSON.stringify(r));
    assert.deepEqual(r.values, {
      FORM_TYPE: "urn:xmpp-iot-agent:cmd",
      channel: "relay",
      value: 42,
      gain: 1.5,
      pulse: true,
      tags: ["a", "b"],
      notify: "bob@iot.test",
      script: "line 1\nline 2",
      pin: "1234",
    });
  });

  it("names each bad field and why, all at once", () => {
    const r = validateSubmission(
      DECLARED,
      submit({ channel: ["fan"], value: ["101"], gain: ["x"], pulse: ["maybe"], tags: ["c"], notify: ["not a jid"] }),
    );
    assert.equal(r.ok, false);
    if (r.ok) return;
    const byField = Object.fromEntries(r.problems.map((p) => [p.field, p.message]));
    assert.match(byField.channel!, /must be one of led, relay/);
    assert.match(byField.value!, /must be <= 100, got 101/);
    assert.match(byField.gain!, /must be a number/);
    assert.match(byField.pulse!, /true or false/);
    assert.match(byField.tags!, /must be among a, b/);
    assert.match(byField.notify!, /must be a JID/);
  });

  it("reports missing required fields, applies defaults, and rejects unknown fields", () => {
    const r = validateSubmission(DECLARED, submit({ valeu: ["3"], value: [""] }));
    assert.equal(r.ok, false);
    if (r.ok) return;
    const byField = Object.fromEntries(r.problems.map((p) => [p.field, p.message]));
    assert.equal(byField.channel, "is required");
    assert.equal(byField.value, "is required");
    assert.match(byField.valeu!, /is not a field of this form/);

    const ok = validateSubmission(DECLARED, submit({ channel: ["led"], value: ["0"] }));
    assert.ok(ok.ok);
    if (!ok.ok) return;
    assert.equal(ok.values.gain, 1.5);
    assert.equal(ok.values.pulse, false);
    assert.equal(ok.values.notify, undefined);
  });

  it("rejects a non-integer, a float for xs:integer, an unsafe integer and two values for a single field", () => {
    for (const [v, re] of [
      [["4.5"], /whole number/],
      [["9999999999999999999"], /out of range/],
      [["1", "2"], /takes one value/],
    ] as const) {
      const r = validateSubmission(DECLARED, submit({ channel: ["led"], value: [...v] }));
      assert.equal(r.ok, false);
      if (!r.ok) assert.match(r.problems[0]!.message, re);
    }
  });

  it("checks XEP-0122 regex on text fields", () => {
    const decl: FormField[] = [
      { type: "text-single", var: "cmd", values: [], validate: { datatype: "xs:string", regex: "[A-Z]{1,8}" } },
    ];
    assert.ok(validateSubmission(decl, submit({ cmd: ["PING"] })).ok);
    const bad = validateSubmission(decl, submit({ cmd: ["PING; rm"] }));
    assert.equal(bad.ok, false);
  });

  it("throws a typed FormError on malformed forms", () => {
    const cases = [
      `<x xmlns="${NS_DATA}" type="bogus"/>`,
      `<x xmlns="${NS_DATA}" type="submit"><field type="text-single"><value>v</value></field></x>`,
      `<x xmlns="${NS_DATA}" type="submit"><field var="a" type="weird"/></x>`,
      `<x xmlns="${NS_DATA}" type="submit"><field var="a"/><field var="a"/></x>`,
      `<x xmlns="${NS_DATA}" type="submit">${'<field var="a">'.concat("<value>v</value>".repeat(101), "</field>")}</x>`,
      `<x xmlns="${NS_DATA}" type="submit"><field var="a"><value>${"v".repeat(5000)}</value></field></x>`,
      `<x xmlns="urn:other" type="submit"/>`,
    ];
    for (const xml of cases) assert.throws(() => parseForm(parse(xml)), FormError, xml.slice(0, 80));
  });
});
