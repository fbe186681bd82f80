import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parse } from "ltx";
import {
  buildAffiliationsRequest,
  buildAffiliationsSet,
  buildConfigureRequest,
  buildSubscriptionsRemoval,
  buildSubscriptionsRequest,
  configDiffers,
  configFormValues,
  listedConfigFields,
  NS_PUBSUB_OWNER,
  parseAffiliations,
  parseSubscriptions,
} from "./pubsub.js";

const NODE = "devices/dev1/telemetry";

describe("pubsub owner stanzas (XEP-0060 8.8, 8.9)", () => {
  it("asks for a node's affiliations with an owner get, to the service or (PEP) to nobody", () => {
    assert.equal(
      buildAffiliationsRequest("pubsub.iot.test", NODE).toString(),
      `<iq type="get" to="pubsub.iot.test"><pubsub xmlns="${NS_PUBSUB_OWNER}"><affiliations node="${NODE}"/></pubsub></iq>`,
    );
    assert.equal(buildAffiliationsRequest(undefined, NODE).attrs.to, undefined);
  });

  it("sends affiliation changes as a delta", () => {
    assert.equal(
      buildAffiliationsSet("pubsub.iot.test", NODE, [
        { jid: "op@iot.test", affiliation: "member" },
        { jid: "old@iot.test", affiliation: "none" },
      ]).toString(),
      `<iq type="set" to="pubsub.iot.test"><pubsub xmlns="${NS_PUBSUB_OWNER}"><affiliations node="${NODE}">` +
        `<affiliation jid="op@iot.test" affiliation="member"/><affiliation jid="old@iot.test" affiliation="none"/>` +
        "</affiliations></pubsub></iq>",
    );
  });

  it("reads an affiliations result, leaving out entries it cannot judge", () => {
    const result = parse(
      `<iq type="result"><pubsub xmlns="${NS_PUBSUB_OWNER}"><affiliations node="${NODE}">` +
        `<affiliation jid="dev1@iot.test" affiliation="owner"/><affiliation jid="op@iot.test" affiliation="member"/>` +
        `<affiliation jid="x@iot.test" affiliation="overlord"/><affiliation affiliation="owner"/>` +
        "</affiliations></pubsub></iq>",
    );
    assert.deepEqual(parseAffiliations(result), [
      { jid: "dev1@iot.test", affiliation: "owner" },
      { jid: "op@iot.test", affiliation: "member" },
    ]);
    // An empty result (no payload) is an empty list, which no one owns.
    assert.deepEqual(parseAffiliations(parse('<iq type="result"/>')), []);
  });

  it("lists and removes subscriptions, with the subid when there is one", () => {
    assert.equal(
      buildSubscriptionsRequest("pubsub.iot.test", NODE).toString(),
      `<iq type="get" to="pubsub.iot.test"><pubsub xmlns="${NS_PUBSUB_OWNER}"><subscriptions node="${NODE}"/></pubsub></iq>`,
    );
    assert.equal(
      buildSubscriptionsRemoval(undefined, NODE, [
        { jid: "a@iot.test/x", subscription: "subscribed", subid: "s1" },
        { jid: "b@iot.test", subscription: "subscribed" },
      ]).toString(),
      `<iq type="set"><pubsub xmlns="${NS_PUBSUB_OWNER}"><subscriptions node="${NODE}">` +
        `<subscription jid="a@iot.test/x" subscription="none" subid="s1"/><subscription jid="b@iot.test" subscription="none"/>` +
        "</subscriptions></pubsub></iq>",
    );
    const result = parse(
      `<iq type="result"><pubsub xmlns="${NS_PUBSUB_OWNER}"><subscriptions node="${NODE}">` +
        `<subscription jid="op@iot.test" subscription="subscribed" subid="70481B14E1AF"/><subscription jid="b@iot.test"/><subscription/>` +
        "</subscriptions></pubsub></iq>",
    );
    assert.deepEqual(parseSubscriptions(result), [
      { jid: "op@iot.test", subscription: "subscribed", subid: "70481B14E1AF" },
      { jid: "b@iot.test", subscription: "subscribed" },
    ]);
  });

  it("reads a configuration form's values and tells which differ from the wanted config", () => {
    assert.equal(buildConfigureRequest(undefined, NODE).attrs.type, "get");
    const form = parse(
      `<iq type="result"><pubsub xmlns="${NS_PUBSUB_OWNER}"><configure node="${NODE}"><x xmlns="jabber:x:data" type="form">` +
        `<field var="FORM_TYPE" type="hidden"><value>http://jabber.org/protocol/pubsub#node_config</value></field>` +
        `<field var="pubsub#persist_items" type="boolean"><value>1</value></field>` +
        `<field var="pubsub#max_items"><value>256</value></field>` +
        `<field var="pubsub#access_model" type="list-single"><value>open</value></field>` +
        `<field var="pubsub#title"/></x></configure></pubsub></iq>`,
    );
    const values = configFormValues(form);
    assert.deepEqual(
      [...values],
      [
        ["pubsub#persist_items", "1"],
        ["pubsub#max_items", "256"],
        ["pubsub#access_model", "open"],
        ["pubsub#title", ""],
      ],
    );
    assert.deepEqual([...listedConfigFields(form)], [...values.keys()]);
    assert.deepEqual(configDiffers(values, { persistItems: true, maxItems: 256, accessModel: "whitelist" }), [
      "pubsub#access_model",
    ]);
    assert.deepEqual(configDiffers(values, { persistItems: false, maxItems: 32, accessModel: "open" }), [
      "pubsub#persist_items",
      "pubsub#max_items",
    ]);
    // "max" is the server's own number, whatever the form shows; fields the form does not list are not compared.
    assert.deepEqual(configDiffers(values, { persistItems: true, maxItems: "max", accessModel: "open" }), []);
    assert.deepEqual(configDiffers(new Map(), { persistItems: true, maxItems: 1, accessModel: "open" }), []);
  });
});
