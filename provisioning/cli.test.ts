import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { type Element, parse } from "ltx";
import { verifyBundle } from "./bundle.js";
import { main, parseDuration } from "./cli.js";
import { createCsr, generateDeviceKey } from "./device-key.js";
import { isProvisioningError } from "./errors.js";
import { verifyRevocationList } from "./revocation.js";
import { FakeSession } from "../xmpp/testing/index.js";
import { NS_COMMANDS } from "./xmpp-admin.js";

const root = mkdtempSync(join(tmpdir(), "prov-cli-"));
after(() => rmSync(root, { recursive: true, force: true }));
const home = join(root, "fleet");
const pwFile = join(root, "admin.pw");
writeFileSync(pwFile, "admin-pw\n");

/** A fake server: answers every ad-hoc command like Prosody does (form, then completed). */
function fakeServer(log: string[]): FakeSession {
  return new FakeSession((iq: Element) => {
    const cmd = iq.getChild("command", NS_COMMANDS)!;
    const node = String(cmd.attrs.node);
    log.push(`${cmd.attrs.action} ${node} -> ${iq.attrs.to}`);
    const r = (inner: string) => parse(`<iq type="result">${inner}</iq>`) as Element;
    if (node === "urn:xmpp:invite#create-account")
      return r(
        `<command xmlns="${NS_COMMANDS}" node="${node}" status="completed"><x xmlns="jabber:x:data" type="result"><field var="uri"><value>xmpp:iot.test?register;preauth=TOKEN42</value></field></x></command>`,
      );
    if (node === "rotate-credentials")
      return r(
        `<command xmlns="${NS_COMMANDS}" node="${node}" status="completed"><note type="info">Password rotated</note></command>`,
      );
    if (cmd.attrs.action === "execute")
      return r(
        `<command xmlns="${NS_COMMANDS}" node="${node}" sessionid="s" status="executing"><x xmlns="jabber:x:data" type="form"/></command>`,
      );
    if (node.endsWith("#disable-user")) return Promise.reject(Object.assign(new Error("x"), {}));
    if (node.endsWith("#get-online-users-list"))
      return r(
        `<command xmlns="${NS_COMMANDS}" node="${node}" status="completed"><x xmlns="jabber:x:data" type="result"><field var="onlineuserjids"><value>d1@iot.test/agent</value></field></x></command>`,
      );
    return r(`<command xmlns="${NS_COMMANDS}" node="${node}" status="completed"><note type="info">ok</note></command>`);
  });
}

const calls: string[] = [];
let connects = 0;
const deps = {
  caKeyBits: 2048,
  connect: async () => {
    connects++;
    return { session: fakeServer(calls), close: async () => {} };
  },
};
const env = {
  IOT_FLEET_HOME: home,
  IOT_FLEET_ADMIN_JID: "admin@iot.test",
  IOT_FLEET_ADMIN_PASSWORD_FILE: pwFile,
  IOT_FLEET_SERVER: "127.0.0.1:5222",
};

async function run(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, { out: (s) => out.push(s), err: (s) => err.push(s), env }, deps);
  return { code, out: out.join("\n"), err: err.join("\n") };
}

describe("iot-fleet CLI", () => {
  it("--help everywhere, usage errors exit 2", async () => {
    assert.equal((await run("--help")).code, 0);
    assert.equal((await run()).code, 2);
    for (const c of [
      ["ca", "init"],
      ["ca", "show"],
      ["provision"],
      ["rotate"],
      ["revoke"],
      ["revocations"],
      ["list"],
      ["tag"],
    ]) {
      const r = await run(...c, "--help");
      assert.equal(r.code, 0, c.join(" "));
      assert.match(r.out, /Usage: iot-fleet/);
    }
    assert.equal((await run("frobnicate")).code, 2);
    assert.equal((await run("list", "--bogus")).code, 2);
    assert.equal((await run("provision")).code, 2);
    assert.equal((await run("provision", "bad id!", "--out", "x")).code, 2);
    assert.equal((await run("provision", "d1")).code, 2, "--out missing");
    assert.equal((await run("provision", "d1", "--out", "x", "--invite", "--admin-password")).code, 2);
    assert.equal((await run("provision", "d1", "--out", "x", "--valid-for", "forever")).code, 2);
    assert.throws(
      () => parseDuration("10s"),
      (e: unknown) => isProvisioningError(e, "usage"),
    );
    assert.equal(parseDuration("7d"), 7 * 86_400_000);
  });

  it("needs a CA before provisioning (exit 3), creates one, refuses a second", async () => {
    const r = await run("provision", "d1", "--out", join(root, "x.json"), "--invite-token", "t");
    assert.equal(r.code, 3, r.err);
    assert.match(r.err, /ca init/);
    assert.equal((await run("ca", "init", "--cn", "Test")).code, 0);
    assert.equal(statSync(join(home, "ca", "ca.key.pem")).mode & 0o777, 0o600);
    const again = await run("ca", "init");
    assert.equal(again.code, 3);
    assert.doesNotMatch(again.err, /generating/, "refuses before promising to generate a key");
    const show = await run("--json", "ca", "show");
    assert.match(JSON.parse(show.out).fingerprint, /^[0-9a-f]{64}$/);
  });

  it("release build packs a directory into a signed release; a directory that is not an install is a usage error", async () => {
    const tree = join(root, "agent-tree");
    for (const d of ["bin", "dist", "node_modules"]) mkdirSync(join(tree, d), { recursive: true });
    writeFileSync(
      join(tree, "bin", "iot-agent.js"),
      'console.log(process.argv.includes("--data-formats") ? \'{"spool":1}\' : "xmpp-iot-agent 1.2.3");\n',
    );
    writeFileSync(join(tree, "dist", "iot-agent.cjs"), "");
    writeFileSync(join(tree, "package.json"), JSON.stringify({ name: "xmpp-iot-agent", version: "1.2.3" }));
    writeFileSync(join(tree, "package-lock.json"), "{}");
    const r = await run("--json", "release", "build", "--from", tree, "--out", join(root, "rel"));
    assert.equal(r.code, 0, r.err);
    const out = JSON.parse(r.out);
    assert.equal(out.manifest.version, "1.2.3");
    assert.equal(JSON.parse(readFileSync(out.manifestFile, "utf8")).signature.alg, "RS256");
    const bad = await run("release", "build", "--from", join(root, "nowhere"));
    assert.equal(bad.code, 2, bad.err);
    assert.match(bad.err, /installed agent directory/);
  });

  it("provision (invite via ad-hoc) -> list -> rotate -> revoke, with a signed revocation list", async () => {
    const bundle = join(root, "d1.json");
    let r = await run(
      "provision",
      "d1",
      "--out",
      bundle,
      "--pubsub",
      "pubsub.iot.test",
      "--operator",
      "alice@iot.test",
    );
    assert.equal(r.code, 0, r.err);
    assert.ok(calls.includes("execute urn:xmpp:invite#create-account -> iot.test"));
    const b = JSON.parse(readFileSync(bundle, "utf8"));
    const caPem = readFileSync(join(home, "ca", "ca.cert.pem"), "utf8");
    const p = verifyBundle(b, { caCertPem: caPem }, new Date());
    assert.deepEqual(p.credential, { type: "invite", token: "TOKEN42", uri: "xmpp:iot.test?register;preauth=TOKEN42" });
    assert.deepEqual(p.operators, ["alice@iot.test"]);
    assert.deepEqual(p.fleetAdmins, ["admin@iot.test"]);
    assert.equal(p.device.jid, "d1@iot.test");

    r = await run("list", "--online");
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /d1\s+d1@iot\.test\s+enrolled/);
    r = await run("provision", "d1", "--out", bundle);
    assert.equal(r.code, 3, "already enrolled");

    r = await run("rotate", "d1");
    assert.equal(r.code, 0, r.err);
    assert.ok(calls.includes("execute rotate-credentials -> d1@iot.test/agent"));

    r = await run("revoke", "d1");
    assert.equal(r.code, 0, r.err);
    assert.ok(calls.some((c) => c.startsWith("complete http://jabber.org/protocol/admin#delete-user")));
    const list = verifyRevocationList(JSON.parse(readFileSync(join(home, "revocations.json"), "utf8")), {
      caCertPem: caPem,
    });
    assert.deepEqual(list.bundleIds, [p.bundleId]);
    assert.equal((await run("rotate", "d1")).code, 3);
    assert.equal((await run("provision", "d1", "--out", bundle)).code, 3);
    assert.equal((await run("rotate", "nobody")).code, 3);
  });

  it("admin path: clear without a CSR (with a warning), sealed with one", async () => {
    let r = await run("provision", "d2", "--out", join(root, "d2.json"), "--admin-password");
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /in clear/);
    const clear = JSON.parse(readFileSync(join(root, "d2.json"), "utf8")).payload.credential;
    assert.equal(clear.type, "password");
    assert.ok(!r.out.includes(clear.password) && !r.err.includes(clear.password), "password printed");
    const key = generateDeviceKey();
    const csr = join(root, "d3.csr");
    writeFileSync(csr, createCsr(key.privateKeyPem, "d3@iot.test"));
    r = await run("provision", "d3", "--out", join(root, "d3.json"), "--admin-password", "--csr", csr);
    assert.equal(r.code, 0, r.err);
    const b = JSON.parse(readFileSync(join(root, "d3.json"), "utf8"));
    assert.equal(b.payload.credential.type, "password-sealed");
    assert.match(b.payload.clientCert.serial, /^[0-9a-f]+$/);
    writeFileSync(csr, "garbage");
    r = await run("provision", "d4", "--out", join(root, "d4.json"), "--admin-password", "--csr", csr);
    assert.equal(r.code, 4);
  });

  it("offline provisioning with --invite-token makes no XMPP connection", async () => {
    const before = connects;
    const r = await run(
      "provision",
      "d5",
      "--out",
      join(root, "d5.json"),
      "--invite-token",
      "T",
      "--domain",
      "iot.test",
    );
    assert.equal(r.code, 0, r.err);
    assert.equal(connects, before);
  });

  it("tags: set at provision time, changed with tag, used by list's selector", async () => {
    const out = (id: string) => join(root, `${id}.json`);
    for (const [id, site] of [
      ["g1", "greenhouse-2"],
      ["g2", "greenhouse-2"],
      ["b1", "barn"],
    ] as const) {
      const r = await run(
        "provision",
        id,
        "--out",
        out(id),
        "--invite-token",
        "T",
        "--domain",
        "iot.test",
        "--tag",
        `site=${site}`,
        "--tag",
        "hw=pi4",
      );
      assert.equal(r.code, 0, r.err);
    }
    let r = await run("--json", "list", "--tag", "site=greenhouse-2");
    assert.deepEqual(
      JSON.parse(r.out).map((d: { id: string }) => d.id),
      ["g1", "g2"],
    );
    assert.deepEqual(JSON.parse(r.out)[0].tags, { hw: "pi4", site: "greenhouse-2" });
    r = await run("tag", "hw=pi5");
    assert.equal(r.code, 2, "a selector is required");
    assert.match(r.err, /--all, --device ID, --tag KEY=VALUE, --state STATE or --older-than DURATION/);
    r = await run("tag", "--all", "--device", "g1", "hw=pi5");
    assert.equal(r.code, 2, "--all with another criterion");
    r = await run("tag", "--device", "g1", "bad key=x");
    assert.equal(r.code, 2);
    r = await run("tag", "--device", "nope", "hw=pi5");
    assert.equal(r.code, 3, "an unknown device");
    r = await run("tag", "--tag", "site=greenhouse-2", "hw=pi5", "row=3");
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /g1\s+hw=pi5 row=3 site=greenhouse-2\s+changed/);
    assert.match(r.out, /2 device\(s\) selected, 2 changed/);
    r = await run("tag", "--device", "g2", "--untag", "row", "--untag", "hw");
    assert.equal(r.code, 0, r.err);
    r = await run("list", "--tag", "hw=pi5");
    assert.match(r.out, /TAGS/);
    assert.match(r.out, /g1 .* hw=pi5 row=3 site=greenhouse-2/);
    assert.doesNotMatch(r.out, /\bg2\b|\bb1\b/);
    r = await run("list", "--tag", "site=greenhouse-2", "--state", "enrolled");
    assert.match(r.out, /no device matches --tag site=greenhouse-2 --state enrolled/);
    r = await run("list", "--state", "bogus");
    assert.equal(r.code, 2);
    r = await run("--json", "list", "--device", "b1", "--device", "g2");
    assert.deepEqual(
      JSON.parse(r.out).map((d: { id: string; tags?: object }) => [d.id, d.tags]),
      [
        ["b1", { hw: "pi4", site: "barn" }],
        ["g2", { site: "greenhouse-2" }],
      ],
    );
  });

  it("bulk revoke --local-only records and signs first; the job shuts the accounts out when resumed", async () => {
    let r = await run("revoke", "--tag", "site=barn", "--local-only", "--json");
    assert.equal(r.code, 0, r.err);
    const { revoked, job } = JSON.parse(r.out) as { revoked: string[]; job: string };
    assert.deepEqual(revoked, ["b1"]);
    const list = verifyRevocationList(JSON.parse(readFileSync(join(home, "revocations.json"), "utf8")), {
      caCertPem: readFileSync(join(home, "ca", "ca.cert.pem"), "utf8"),
    });
    assert.ok(list.jids.includes("b1@iot.test"));
    r = await run("--json", "job", job, "--resume");
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(
      (JSON.parse(r.out) as { devices: Array<{ id: string; status: string; note: string }> }).devices.map((d) => [
        d.id,
        d.status,
        d.note,
      ]),
      [["b1", "completed", "account deleted"]],
    );
    assert.ok(calls.some((c) => c === "complete http://jabber.org/protocol/admin#delete-user -> iot.test"));
    r = await run("jobs");
    assert.match(r.out, new RegExp(`${job}\\s+\\S+\\s+revoke\\s+1\\s+finished\\s+1 completed`));
    assert.equal((await run("job", "j-20990101-000000-0000")).code, 3, "an unknown job");
    assert.equal((await run("job", "nope")).code, 2);
    assert.equal((await run("rotate", "--tag", "site=barn", "--admin-reset")).code, 2);
  });

  it("a locked store exits 6", async () => {
    writeFileSync(join(home, "fleet.json.lock"), `${process.pid}\n`);
    try {
      const r = await main(
        ["revoke", "d5", "--local-only"],
        { out: () => {}, err: () => {}, env },
        { ...deps, lockWaitMs: 100 },
      );
      assert.equal(r, 6);
    } finally {
      rmSync(join(home, "fleet.json.lock"));
    }
  });
});
