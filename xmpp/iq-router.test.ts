import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Element, parse } from "ltx";
import { silentLogger } from "../kernel/log.js";
import { IqRouter } from "./iq.js";
import { StanzaError } from "./stanza-error.js";

describe("IqRouter", () => {
  it("answers a handler that throws synchronously, and gives its slot back", async () => {
    const sent: Element[] = [];
    const router = new IqRouter({ log: silentLogger, send: (iq) => sent.push(iq), maxConcurrent: 1 });
    router.register("get", "query", "urn:x", ((): Promise<undefined> => {
      throw new StanzaError("service-unavailable", "cancel");
    }) as never);
    for (const id of ["a", "b"]) {
      router.dispatch(parse(`<iq type="get" id="${id}" from="x@y/z"><query xmlns="urn:x"/></iq>`));
      await new Promise((r) => setImmediate(r));
    }
    assert.deepEqual(
      sent.map((s) => [s.attrs.id, s.attrs.type, s.getChild("error")?.children.map((c) => (c as Element).name)[0]]),
      [
        ["a", "error", "service-unavailable"],
        ["b", "error", "service-unavailable"], // not resource-constraint: the first one's slot came back
      ],
    );
  });
});
