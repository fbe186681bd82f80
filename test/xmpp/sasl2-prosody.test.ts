/**
 * SASL2 (XEP-0388), FAST (XEP-0484) and Bind2 (XEP-0386) against a real Prosody 0.12 with Debian's
 * prosody-modules (mod_sasl2, mod_sasl2_bind2, mod_sasl2_fast) and the shipped 0.12 shim
 * (deploy/servers/prosody/modules/mod_iot_sasl2_compat.lua), through the link-breaking proxy.
 * The classic path (no SASL2 offered) is every other suite's.
 */
import assert from "node:assert/strict";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Element } from "ltx";
import { FileFastTokenStore } from "../../xmpp/fast-token.js";
import type { XmppSession } from "../../xmpp/session.js";
import {
  PROSODY_SASL2_MODULES,
  type ProsodyHandle,
  prosodyModulesInstalled,
  sasl2PluginPaths,
  startProsody,
} from "../harness/prosody.js";
import { type LinkBreakingProxy, startProxy } from "../harness/proxy.js";
import { makeTempDir } from "../harness/tmp.js";
import { newSession, testLogger, testXmppConfig, waitFor, waitOnline } from "./helpers.js";

const skip = prosodyModulesInstalled()
  ? false
  : "Debian's prosody-modules is not installed (scripts/setup installs it)";

function chat(to: string, body: string): Element {
  return new Element("message", { to, type: "chat", id: body }).c("body").t(body).root();
}

describe("SASL2, FAST and Bind2 against Prosody 0.12 with prosody-modules", { skip }, () => {
  let prosody: ProsodyHandle;
  let proxy: LinkBreakingProxy;
  let receiver: XmppSession;
  const received: string[] = [];
  let dir: string;

  before(async () => {
    prosody = await startProsody({
      extraModules: PROSODY_SASL2_MODULES,
      extraGlobalLua: sasl2PluginPaths,
      smacksHibernationTime: 60,
    });
    for (const u of ["device", "device2", "device3", "receiver"]) await prosody.register(u, `${u}-pw`);
    proxy = await startProxy({ targetPort: prosody.port });
    dir = makeTempDir("sasl2-").path;
    receiver = newSession(
      testXmppConfig(prosody, "receiver@iot.test", "receiver-pw", { sasl2: { enabled: false } }),
      "receiver-pw",
    );
    receiver.on("stanza", (el: Element) => {
      const body = el.getChildText("body");
      if (el.name === "message" && body) received.push(body);
    });
    receiver.start();
    await waitOnline(receiver);
  });

  after(async () => {
    await receiver?.stop();
    await proxy?.stop();
    await prosody?.stop();
  });

  function deviceConfig(user: string, extra: Record<string, unknown> = {}) {
    return testXmppConfig({ ...prosody, host: proxy.host, port: proxy.port }, `${user}@iot.test`, `${user}-pw`, {
      sasl2: { tokenFile: join(dir, `${user}-token.json`) },
      ...extra,
    });
  }

  it("logs in with SCRAM through SASL2, gets a FAST token (0600 file), then reconnects with FAST and resumes: nothing lost or doubled", async () => {
    const cfg = deviceConfig("device");
    const s = newSession(cfg, "device-pw");
    s.start();
    const first = await waitOnline(s);
    assert.equal(first.jid, "device@iot.test/agent", "Bind2 is off by default: the configured resource");
    assert.match(s.stats().mechanism ?? "", /^SCRAM-SHA-/);
    const file = cfg.sasl2.tokenFile!;
    const saved = JSON.parse(readFileSync(file, "utf8"));
    assert.equal(saved.token.mechanism, "HT-SHA-256-NONE");
    assert.match(saved.token.secret, /^secret-token:fast-/);
    assert.ok(saved.token.expiresAt > Date.now() + 86_400_000, "Prosody issues tokens for 21 days");
    assert.equal(statSync(file).mode & 0o777, 0o600);

    // Stanzas sent while the link is down are held and go out once, after the FAST resumption.
    await s.send(chat("receiver@iot.test", "before-1"));
    proxy.reset();
    const inFlight = [s.send(chat("receiver@iot.test", "during-1")), s.send(chat("receiver@iot.test", "during-2"))];
    const again = await waitOnline(s);
    assert.equal(again.resumed, true);
    assert.equal(s.stats().mechanism, "HT-SHA-256-NONE");
    await Promise.all(inFlight);
    await s.send(chat("receiver@iot.test", "after-1"));
    await waitFor(() => received.includes("after-1"), 5000, "the last message");
    assert.deepEqual(
      received.filter((b) => /^(before|during|after)-/.test(b)),
      ["before-1", "during-1", "during-2", "after-1"],
    );
    await s.stop();

    // A new process (same token file): FAST again, a fresh session bound.
    const next = newSession(cfg, "device-pw", { fastTokens: new FileFastTokenStore(file, testLogger()) });
    next.start();
    const fresh = await waitOnline(next);
    assert.equal(fresh.resumed, false);
    assert.equal(next.stats().mechanism, "HT-SHA-256-NONE");
    assert.equal(JSON.parse(readFileSync(file, "utf8")).clientId, saved.clientId, "the client id survives restarts");
    await next.stop();
  });

  it("a token the server refuses is dropped: the next connection logs in with the password and gets a new one, with no fault", async () => {
    const cfg = deviceConfig("device2");
    const s = newSession(cfg, "device2-pw");
    s.start();
    await waitOnline(s);
    await s.stop();
    const file = cfg.sasl2.tokenFile!;
    const saved = JSON.parse(readFileSync(file, "utf8"));
    saved.token.secret = "secret-token:fast-forged";
    writeFileSync(file, JSON.stringify(saved));

    const again = newSession(cfg, "device2-pw");
    const faults: string[] = [];
    again.on("fault", (e) => faults.push(e.code));
    again.start();
    await waitOnline(again);
    assert.match(again.stats().mechanism ?? "", /^SCRAM-SHA-/);
    assert.ok(again.stats().connects >= 2, "the refused FAST attempt was one connection");
    assert.deepEqual(faults, []);
    const renewed = JSON.parse(readFileSync(file, "utf8"));
    assert.notEqual(renewed.token.secret, "secret-token:fast-forged");
    await again.stop();
  });

  it("a deleted account (revoked device) is refused with its token too", async () => {
    const cfg = deviceConfig("device3");
    const s = newSession(cfg, "device3-pw");
    s.start();
    await waitOnline(s);
    await s.stop();
    assert.ok(JSON.parse(readFileSync(cfg.sasl2.tokenFile!, "utf8")).token, "a token was issued");
    await prosody.unregister("device3");
    const again = newSession(cfg, "device3-pw");
    const fault = new Promise<string>((resolve) => again.once("fault", (e) => resolve(e.code)));
    again.start();
    assert.equal(await fault, "auth_failed");
    assert.equal(JSON.parse(readFileSync(cfg.sasl2.tokenFile!, "utf8")).token, undefined, "token dropped");
    await again.stop();
  });

  it("with Bind2 the server picks the resource from the tag; FAST resumption still works", async () => {
    const cfg = deviceConfig("receiver", {
      sasl2: { bind2: true, tokenFile: join(dir, "bind2-token.json") },
      resource: "probe",
    });
    const s = newSession(cfg, "receiver-pw");
    s.start();
    const first = await waitOnline(s);
    assert.match(first.jid, /^receiver@iot\.test\/probe~.+/);
    proxy.reset();
    const again = await waitOnline(s);
    assert.equal(again.resumed, true);
    assert.equal(s.jid, first.jid);
    await s.stop();
  });
});
