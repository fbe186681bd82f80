import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { parse, type Element } from "ltx";
import { AgentError } from "../../kernel/errors.js";
import { createLogger } from "../../kernel/log.js";
import { FakeTimers } from "../../kernel/timers.js";
import { parseConfig } from "../../agent/config/load.js";
import { createBundle, serialiseBundle } from "../bundle.js";
import { initCa, loadCa } from "../ca.js";
import { createCsr, generateDeviceKey, sealToPublicKey } from "../device-key.js";
import { isProvisioningError } from "../errors.js";
import type { RegisterOptions } from "../register.js";
import { FakeSession, iqError } from "../../xmpp/testing/index.js";
import { NS_COMMANDS } from "../xmpp-admin.js";
import { enrollMain } from "./cli.js";
import { CredentialStore, DEVICE_KEY_FILE } from "./credentials.js";
import { enroll } from "./enroll.js";
import { installRotationResponder, rotateOwnPassword, startPeriodicRotation } from "./rotation.js";

const root = mkdtempSync(join(tmpdir(), "prov-device-"));
after(() => rmSync(root, { recursive: true, force: true }));
initCa({ dir: join(root, "ca"), subject: { commonName: "t" }, keyBits: 2048 });
const ca = loadCa({ dir: join(root, "ca") });
const caFile = join(root, "ca", "ca.cert.pem");
let n = 0;

function bundleWith(credential: Parameters<typeof createBundle>[0]["credential"]) {
  return createBundle(
    {
      device: { id: "dev-1", jid: "dev-1@iot.test" },
      server: { host: "127.0.0.1", port: 5222, pinSha256: "ab".repeat(32) },
      pubsub: { service: "pubsub.iot.test" },
      operators: ["admin@iot.test"],
      credential,
      validForMs: 3_600_000,
    },
    ca,
  );
}

function dirs() {
  const base = join(root, `d${++n}`);
  return { configFile: join(base, "etc", "agent.yaml"), dataDir: join(base, "data") };
}

describe("enroll (network faked)", () => {
  it("invite path: generates the password, registers with the token, writes 0600/0700 files and a valid config", async () => {
    const d = dirs();
    const calls: RegisterOptions[] = [];
    const lines: string[] = [];
    const logLines: string[] = [];
    const r = await enroll({
      bundle: bundleWith({ type: "invite", token: "tok-1" }),
      fleetCaFile: caFile,
      ...d,
      register: async (o) => {
        calls.push(o);
      },
      connectCheck: async () => ({ jid: "dev-1@iot.test/agent" }),
      progress: (l) => lines.push(l),
      log: createLogger({ level: "debug", write: (l) => logLines.push(l) }),
    });
    assert.equal(r.boundJid, "dev-1@iot.test/agent");
    assert.equal(calls[0]?.token, "tok-1");
    assert.equal(calls[0]?.username, "dev-1");
    assert.equal(calls[0]?.tls.pinSha256, "ab".repeat(32));
    const creds = new CredentialStore(r.credentialsDir);
    const pw = creds.readPassword();
    assert.equal(pw, calls[0]?.password);
    assert.equal(statSync(creds.dir).mode & 0o777, 0o700);
    assert.equal(statSync(creds.passwordFile).mode & 0o777, 0o600);
    for (const text of [...lines, ...logLines])
      assert.ok(!text.includes(pw) && !text.includes("tok-1"), `secret leaked: ${text}`);
    const { config, password } = parseConfig(readFileSync(d.configFile, "utf8"), d.configFile);
    assert.equal(password, pw);
    assert.equal(config.xmpp.jid, "dev-1@iot.test");
    assert.equal(config.xmpp.server, "127.0.0.1:5222");
    assert.equal(config.device.id, "dev-1");
  });

  it("refuses to overwrite an enrolled device without force, and without a trust anchor at all", async () => {
    const d = dirs();
    const opts = { bundle: bundleWith({ type: "password", password: "p" }), fleetCaFile: caFile, ...d, connect: false };
    await enroll(opts);
    await assert.rejects(enroll(opts), (e: unknown) => isProvisioningError(e, "enroll_io"));
    await enroll({ ...opts, force: true });
    await assert.rejects(enroll({ ...opts, fleetCaFile: undefined, force: true }), (e: unknown) =>
      isProvisioningError(e, "bundle_no_trust_anchor"),
    );
  });

  it("sealed admin path: needs this device's key", async () => {
    const d = dirs();
    const key = generateDeviceKey();
    const bundle = bundleWith({ type: "password-sealed", ...sealToPublicKey(key.publicKeyPem, "sealed-pw") });
    await assert.rejects(enroll({ bundle, fleetCaFile: caFile, ...d, connect: false }), (e: unknown) =>
      isProvisioningError(e, "bundle_key_mismatch"),
    );
    const creds = new CredentialStore(join(d.dataDir, "credentials"));
    creds.writeSecret(DEVICE_KEY_FILE, key.privateKeyPem);
    await enroll({ bundle, fleetCaFile: caFile, ...d, connect: false, force: true });
    assert.equal(creds.readPassword(), "sealed-pw");
    // Another device's key cannot open it.
    creds.writeSecret(DEVICE_KEY_FILE, generateDeviceKey().privateKeyPem);
    await assert.rejects(enroll({ bundle, fleetCaFile: caFile, ...d, connect: false, force: true }), (e: unknown) =>
      isProvisioningError(e, "bundle_key_mismatch"),
    );
    assert.ok(createCsr(key.privateKeyPem, "dev-1@iot.test").includes("CERTIFICATE REQUEST"));
  });
});

describe("iot-agent enroll arguments", () => {
  async function run(...args: string[]) {
    const out: string[] = [];
    const err: string[] = [];
    const code = await enrollMain(args, { out: (s) => out.push(s), err: (s) => err.push(s) });
    return { code, out: out.join("\n"), err: err.join("\n") };
  }

  it("prints help, refuses bad usage with exit 2, and maps refusals to exit 4", async () => {
    assert.equal((await run("--help")).code, 0);
    assert.equal((await run()).code, 2);
    assert.equal((await run("a.json", "b.json", "--fleet-ca", caFile)).code, 2);
    const noAnchor = await run("a.json");
    assert.equal(noAnchor.code, 4, "no trust anchor: refused on security grounds, as documented");
    assert.match(noAnchor.err, /\[bundle_no_trust_anchor\]/);
    assert.equal((await run("a.json", "--fleet-ca", caFile, "--bogus")).code, 2);
    assert.equal((await run("a.json", "--fleet-ca", caFile, "--timeout", "0")).code, 2);
    assert.equal((await run("--make-csr")).code, 2);
    const d = dirs();
    const file = join(root, "garbage.json");
    (await import("node:fs")).writeFileSync(file, "{garbage");
    const r = await run(file, "--fleet-ca", caFile, "-c", d.configFile, "--data-dir", d.dataDir);
    assert.equal(r.code, 4);
    assert.match(r.err, /bundle_malformed/);
    const tampered = JSON.parse(serialiseBundle(bundleWith({ type: "invite", token: "t" })));
    tampered.payload.device.jid = "other@iot.test";
    (await import("node:fs")).writeFileSync(file, JSON.stringify(tampered));
    const t = await run(file, "--fleet-ca-fingerprint", ca.fingerprint, "-c", d.configFile, "--data-dir", d.dataDir);
    assert.equal(t.code, 4);
    assert.match(t.err, /bundle_tampered/);
    assert.ok(!existsSync(d.configFile));
  });

  it("--make-csr writes a 0600 key and prints the CSR path", async () => {
    const d = dirs();
    const r = await run("--make-csr", "--jid", "dev-1@iot.test", "--data-dir", d.dataDir);
    assert.equal(r.code, 0, r.err);
    assert.match(readFileSync(r.out.trim(), "utf8"), /CERTIFICATE REQUEST/);
    assert.equal(statSync(join(d.dataDir, "credentials", DEVICE_KEY_FILE)).mode & 0o777, 0o600);
    assert.equal(
      (await run("--make-csr", "--jid", "dev-1@iot.test", "--data-dir", d.dataDir)).code,
      1,
      "refuses to replace the key",
    );
  });
});

describe("credential rotation", () => {
  function store(): CredentialStore {
    const s = new CredentialStore(join(root, `creds${++n}`));
    s.writePassword("old-pw");
    return s;
  }
  const ok = (iq: Element) => parse(`<iq type="result" id="${iq.attrs.id ?? "x"}"/>`) as Element;

  it("journals, changes, commits and hands the new password to the session", async () => {
    const credentials = store();
    const session = new FakeSession(ok);
    await rotateOwnPassword({ session, credentials });
    const now = credentials.readPassword();
    assert.notEqual(now, "old-pw");
    assert.equal(session.password, now);
    assert.equal(credentials.pendingRotation(), undefined);
    assert.equal(session.requests[0]!.getChild("query", "jabber:iq:register")!.getChildText("password"), now);
  });

  it("keeps the old password when the server refuses, and both candidates after a timeout", async () => {
    const credentials = store();
    const session = new FakeSession(() => Promise.reject(iqError("not-allowed")));
    await assert.rejects(rotateOwnPassword({ session, credentials }));
    assert.equal(credentials.readPassword(), "old-pw");
    assert.deepEqual(credentials.candidates(), ["old-pw"]);
    session.responder = () => Promise.reject(new AgentError("iq_timeout", "t"));
    await assert.rejects(rotateOwnPassword({ session, credentials }));
    const cands = credentials.candidates();
    assert.equal(cands.length, 2);
    assert.equal(cands[0], "old-pw");
    // A later rotation that is refused puts that earlier journal back: the server may hold it.
    session.responder = () => Promise.reject(iqError("not-allowed"));
    await assert.rejects(rotateOwnPassword({ session, credentials }));
    assert.deepEqual(credentials.candidates(), cands);
  });

  it("answers rotate-credentials only for allowed requesters", async () => {
    const credentials = store();
    const session = new FakeSession(ok);
    const off = installRotationResponder({ session, credentials, allowed: ["admin@iot.test"] });
    const handler = session.handlers.get(`set command ${NS_COMMANDS}`)!;
    const cmd = (from: string, node = "rotate-credentials") =>
      parse(
        `<iq type="set" from="${from}"><command xmlns="${NS_COMMANDS}" node="${node}" action="execute"/></iq>`,
      ) as Element;
    await assert.rejects(
      handler(cmd("mallory@evil.test/x")),
      (e: unknown) => (e as { condition?: string }).condition === "forbidden",
    );
    await assert.rejects(
      handler(cmd("admin@iot.test/x", "other")),
      (e: unknown) => (e as { condition?: string }).condition === "item-not-found",
    );
    const res = (await handler(cmd("admin@iot.test/cli"))) as Element;
    assert.equal(res.attrs.status, "completed");
    assert.equal(res.getChild("note")!.attrs.type, "info");
    assert.notEqual(credentials.readPassword(), "old-pw");
    off();
    assert.equal(session.handlers.size, 0);
  });

  it("rotates periodically on fake time, only while online, and stops", async () => {
    const credentials = store();
    const session = new FakeSession(ok);
    const timers = new FakeTimers();
    const p = startPeriodicRotation({ session, credentials, timers, intervalMs: 1000 });
    session.online = false;
    timers.advance(1000);
    await new Promise((r) => setImmediate(r));
    assert.equal(session.requests.length, 0);
    session.online = true;
    timers.advance(1000);
    await new Promise((r) => setImmediate(r));
    assert.equal(session.requests.length, 1);
    p.stop();
    assert.equal(timers.pendingCount, 0);
  });
});
