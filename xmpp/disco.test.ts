import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Element, parse } from "ltx";
import { Disco, NS_CAPS, NS_DISCO_INFO, NS_DISCO_ITEMS } from "./disco.js";
import type { StanzaError } from "./stanza-error.js";

const info = (node?: string) =>
  parse(
    `<iq type='get' id='i' from='op@iot.test/x'><query xmlns='${NS_DISCO_INFO}'${node ? ` node='${node}'` : ""}/></iq>`,
  );
const items = (node?: string) =>
  parse(
    `<iq type='get' id='i' from='op@iot.test/x'><query xmlns='${NS_DISCO_ITEMS}'${node ? ` node='${node}'` : ""}/></iq>`,
  );

describe("Disco", () => {
  it("computes the XEP-0115 §5.2 example verification string", () => {
    const d = new Disco({ category: "client", type: "pc", name: "Exodus 0.9.1" });
    d.addFeature(NS_CAPS, "http://jabber.org/protocol/muc");
    assert.equal(d.capsVer(), "QgayPKawpkPSDYmwT/WM94uAlu0=");
    const c = d.capsElement();
    assert.equal(c.attrs.ver, "QgayPKawpkPSDYmwT/WM94uAlu0=");
    d.addFeature("urn:xmpp:ping");
    assert.notEqual(d.capsVer(), "QgayPKawpkPSDYmwT/WM94uAlu0=", "a new feature changes the hash");
  });

  it("answers info with identity and sorted features, without the name when anonymous", async () => {
    const d = new Disco({ category: "client", type: "device", name: "agent" });
    d.addFeature("urn:b", "urn:a");
    const named = await d.handleInfo(info());
    assert.equal(named.getChild("identity")?.attrs.name, "agent");
    assert.deepEqual(
      named.getChildren("feature").map((f) => f.attrs.var),
      [NS_DISCO_INFO, NS_DISCO_ITEMS, "urn:a", "urn:b"],
    );
    const anonymous = await d.handleInfo(info(), { anonymous: true });
    assert.deepEqual(anonymous.getChild("identity")?.attrs, { category: "client", type: "device" });
    // The caps node#ver is answered like the node-less query (XEP-0115 §6.2).
    const ver = `https://github.com/xmpp-iot-agent#${d.capsVer()}`;
    assert.equal((await d.handleInfo(info(ver))).attrs.node, ver);
  });

  it("asks the provider of a node (and of nodes under it), item-not-found otherwise", async () => {
    const d = new Disco({ category: "client", type: "device" });
    const asked: string[] = [];
    d.addNode("cmds", {
      info: async (who, node) => {
        asked.push(`${who} ${node}`);
        return node === "cmds/none"
          ? undefined
          : { identities: [{ category: "automation", type: "command-node" }], features: ["f"] };
      },
      items: async (_who, node) => [{ jid: "device@iot.test/agent", node: `${node}/x`, name: "X" }],
    });
    const res = await d.handleInfo(info("cmds/reboot"));
    assert.equal(res.getChild("identity")?.attrs.type, "command-node");
    assert.deepEqual(asked, ["op@iot.test/x cmds/reboot"]);
    await assert.rejects(d.handleInfo(info("cmds/none")), (e: StanzaError) => e.condition === "item-not-found");
    await assert.rejects(d.handleInfo(info("other")), (e: StanzaError) => e.condition === "item-not-found");
    const list = await d.handleItems(items("cmds"));
    assert.deepEqual(
      list.getChildren("item").map((i: Element) => i.attrs),
      [{ jid: "device@iot.test/agent", node: "cmds/x", name: "X" }],
    );
    assert.equal((await d.handleItems(items())).children.length, 0);
    await assert.rejects(d.handleItems(items("other")), (e: StanzaError) => e.condition === "item-not-found");
  });
});
