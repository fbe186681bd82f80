import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { seededRandom as seeded } from "../firmware-sim/random.js";
import { Ctx } from "../kernel/schema-dsl.js";
import { xmppConfigSchema } from "./config.js";
import { orderEndpoints, preferEndpoint, type WeightedEndpoint } from "./endpoints.js";

const ep = (host: string, priority: number, weight: number): WeightedEndpoint => ({
  host,
  port: 5222,
  priority,
  weight,
});

describe("endpoint order (RFC 2782)", () => {
  it("tries every priority before the next, each endpoint once", () => {
    const list = [ep("c", 20, 1), ep("a", 10, 1), ep("b", 10, 3), ep("d", 20, 0)];
    const order = orderEndpoints(list, seeded(1)).map((e) => e.host);
    assert.deepEqual(order.slice(0, 2).sort(), ["a", "b"]);
    assert.deepEqual(order.slice(2).sort(), ["c", "d"]);
  });

  it("spreads the first choice in proportion to the weights", () => {
    const list = [ep("a", 0, 1), ep("b", 0, 3), ep("z", 0, 0)];
    const random = seeded(7);
    const first = new Map<string, number>();
    for (let i = 0; i < 4000; i++) {
      const h = orderEndpoints(list, random)[0]!.host;
      first.set(h, (first.get(h) ?? 0) + 1);
    }
    const share = (h: string) => (first.get(h) ?? 0) / 4000;
    assert.ok(Math.abs(share("a") - 0.25) < 0.03, `a first ${share("a")}`);
    assert.ok(Math.abs(share("b") - 0.75) < 0.03, `b first ${share("b")}`);
    assert.equal(share("z"), 0, "weight 0 only after the others of its priority");
  });

  it("equal weights: a fleet of 1000 splits about evenly over two nodes", () => {
    const random = seeded(3);
    let onA = 0;
    for (let i = 0; i < 1000; i++) if (orderEndpoints([ep("a", 0, 1), ep("b", 0, 1)], random)[0]!.host === "a") onA++;
    assert.ok(onA > 450 && onA < 550, `${onA} of 1000 on a`);
  });

  it("puts the preferred endpoint first, keeping the rest in order", () => {
    const list = [
      { host: "a", port: 1 },
      { host: "b", port: 1 },
      { host: "c", port: 1 },
    ];
    assert.deepEqual(
      preferEndpoint(list, { host: "c", port: 1 }).map((e) => e.host),
      ["c", "a", "b"],
    );
    assert.deepEqual(preferEndpoint(list, { host: "x", port: 1 }), list);
    assert.deepEqual(preferEndpoint(list, undefined), list);
  });
});

describe("xmpp.servers", () => {
  const parse = (raw: Record<string, unknown>) => {
    const ctx = new Ctx();
    const v = xmppConfigSchema.parse({ jid: "d@iot.test", password: "pw", ...raw }, ctx);
    return { v, issues: ctx.issues.map((i) => `${i.path.join(".")}: ${i.message}`) };
  };

  it("takes host:port strings and mappings with priority and weight", () => {
    const { v, issues } = parse({
      servers: ["xmpp1.example.net:5222", { address: "[2001:db8::1]:5223", priority: 10, weight: 5 }],
    });
    assert.deepEqual(issues, []);
    if (typeof v === "symbol") throw new Error("invalid");
    assert.deepEqual(v.servers, [
      { host: "xmpp1.example.net", port: 5222, priority: 0, weight: 1 },
      { host: "2001:db8::1", port: 5223, priority: 10, weight: 5 },
    ]);
  });

  it("names the bad entry, and refuses server and servers together", () => {
    assert.deepEqual(parse({ servers: ["ok:5222", "nope", { address: "h:70000" }] }).issues, [
      'servers.1: must be host:port, e.g. xmpp1.example.net:5222, got "nope"',
      "servers.2.address: not a host:port: h:70000",
    ]);
    assert.deepEqual(parse({ server: "a:5222", servers: ["b:5222"] }).issues, [
      "servers: set either xmpp.server or xmpp.servers, not both",
    ]);
    assert.match(parse({ servers: [] }).issues.join(), /servers: needs at least 1 entries/);
  });
});
