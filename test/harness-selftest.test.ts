/**
 * Proves each real test peer works, so later suites can trust the harness:
 * Prosody + two slixmpp accounts over STARTTLS, the link-breaking proxy (reset, blackhole, refuse,
 * inject) on plain TCP and on a live XMPP session, socat PTY pairs (256 byte values, unplug/replug),
 * pubsub between two accounts, and ejabberd (skipped with a reason if not installed).
 */
import assert from "node:assert/strict";
import { closeSync, constants, existsSync, openSync, writeSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import { ReadStream } from "node:tty";
import { pendingTeardowns } from "./harness/cleanup.js";
import { ejabberdInstalled, startEjabberd } from "./harness/ejabberd.js";
import { OperatorClient, OperatorError } from "./harness/operator.js";
import { type ProsodyHandle, startProsody } from "./harness/prosody.js";
import { startProxy } from "./harness/proxy.js";
import { startPtyPair } from "./harness/socat.js";
import { createCertificate } from "./harness/certs.js";
import { makeTempDir } from "./harness/tmp.js";

describe("harness: Prosody + slixmpp operator", () => {
  let prosody: ProsodyHandle;
  let alice: OperatorClient;
  let bob: OperatorClient;

  before(async () => {
    prosody = await startProsody({ admins: ["admin@iot.test"] });
    await Promise.all([
      prosody.register("alice", "alice-pw"),
      prosody.register("bob", "bob-pw"),
      prosody.register("admin", "admin-pw"),
    ]);
    [alice, bob] = await Promise.all([
      OperatorClient.login(prosody, "alice", "alice-pw"),
      OperatorClient.login(prosody, "bob", "bob-pw"),
    ]);
  });
  after(async () => {
    await Promise.all([alice?.stop(), bob?.stop()]);
    await prosody?.stop();
  });

  test("both accounts log in over STARTTLS with the harness certificate", () => {
    assert.match(alice.jid ?? "", /^alice@iot\.test\//);
    assert.match(bob.jid ?? "", /^bob@iot\.test\//);
    assert.match(prosody.certFingerprintSha256 ?? "", /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  });

  test("a message goes from one account to the other", async () => {
    await alice.sendMessage("bob@iot.test", "hello bob", { id: "selftest-1" });
    const msg = await bob.waitForMessage((m) => m.id === "selftest-1", 5000);
    assert.equal(msg.body, "hello bob");
    assert.match(msg.from, /^alice@iot\.test\//);
  });

  test("a client trusting a different certificate is refused", async () => {
    const dir = makeTempDir();
    const decoy = await createCertificate({ dir: dir.path, name: "decoy" });
    assert.notEqual(decoy.fingerprintSha256, prosody.certFingerprintSha256);
    const op = await OperatorClient.start({ name: "decoy" });
    try {
      await assert.rejects(
        op.connect({
          jid: "alice@iot.test",
          password: "alice-pw",
          host: prosody.host,
          port: prosody.port,
          caFile: decoy.caFile,
          timeoutMs: 5000,
        }),
        (err: unknown) => err instanceof OperatorError && err.kind === "tls",
      );
    } finally {
      await op.stop();
      dir.remove();
    }
  });

  test("bad requests and python exceptions surface as typed errors with the traceback", async () => {
    await assert.rejects(
      alice.call("no_such_op"),
      (e: unknown) => e instanceof OperatorError && e.kind === "bad-request",
    );
    await assert.rejects(
      alice.iq("iot.test", "get", "<not-xml"),
      (e: unknown) => e instanceof OperatorError && e.kind === "exception" && /Traceback/.test(e.message),
    );
    // The process survives both and keeps serving.
    await alice.sendMessage("bob@iot.test", "still here", { id: "selftest-2" });
    await bob.waitForMessage((m) => m.id === "selftest-2", 5000);
  });

  test("wrong password fails with kind auth", async () => {
    await assert.rejects(
      OperatorClient.login(prosody, "alice", "wrong", { timeoutMs: 5000 }),
      (err: unknown) => err instanceof OperatorError && err.kind === "auth",
    );
  });

  test("pubsub: admin creates a node, bob subscribes, admin publishes, bob gets the item", async () => {
    const admin = await OperatorClient.login(prosody, "admin", "admin-pw");
    try {
      await assert.rejects(
        alice.pubsubCreate(prosody.pubsubJid, "not-allowed"),
        (e: unknown) => e instanceof OperatorError && e.condition === "forbidden",
      );
      await admin.pubsubCreate(prosody.pubsubJid, "selftest/telemetry");
      const sub = await bob.subscribe(prosody.pubsubJid, "selftest/telemetry");
      assert.equal(sub.subscription, "subscribed");
      await admin.publish(prosody.pubsubJid, "selftest/telemetry", "<reading xmlns='urn:example:t'>21.5</reading>", {
        itemId: "r1",
      });
      const ev = await bob.waitForPubsub((p) => p.node === "selftest/telemetry" && p.id === "r1", 5000);
      assert.match(ev.payload ?? "", /<reading xmlns="urn:example:t">21\.5<\/reading>/);
      const items = await bob.getItems(prosody.pubsubJid, "selftest/telemetry");
      assert.deepEqual(
        items.items.map((i) => i.id),
        ["r1"],
      );
    } finally {
      await admin.stop();
    }
  });

  test("ad-hoc: admin runs a multi-step XEP-0133 command", async () => {
    const admin = await OperatorClient.login(prosody, "admin", "admin-pw");
    try {
      const cmds = await admin.listCommands(prosody.domain);
      assert.ok(cmds.some((c) => c.node === "http://jabber.org/protocol/admin#add-user"));
      const node = "http://jabber.org/protocol/admin#add-user";
      const step1 = await admin.execute(prosody.domain, node);
      assert.equal(step1.status, "executing");
      assert.ok(step1.sessionid);
      assert.ok(step1.form?.fields.some((f) => f.var === "accountjid"));
      const done = await admin.complete(prosody.domain, node, step1.sessionid!, {
        accountjid: "carol@iot.test",
        password: "c",
        "password-verify": "c",
      });
      assert.equal(done.status, "completed");
    } finally {
      await admin.stop();
    }
  });

  test("link-breaking proxy: reset disconnects a live slixmpp session", async () => {
    const proxy = await startProxy({ targetPort: prosody.port });
    const op = await OperatorClient.login({ ...prosody, port: proxy.port }, "alice", "alice-pw", {
      resource: "via-proxy",
    });
    try {
      assert.equal(proxy.counters.active, 1);
      proxy.reset();
      await op.waitFor((e) => e.event === "disconnected", 5000);
      assert.equal(proxy.counters.resets, 1);
    } finally {
      await op.stop();
      await proxy.stop();
    }
  });
});

describe("harness: Prosody without TLS", () => {
  test("tls: false never offers STARTTLS: a client requiring it is refused, a plaintext client logs in", async () => {
    const prosody = await startProsody({ tls: false });
    try {
      assert.equal(prosody.caFile, null);
      await prosody.register("plain", "plain-pw");
      await assert.rejects(
        OperatorClient.login(prosody, "plain", "plain-pw", { timeoutMs: 5000 }),
        (err: unknown) => err instanceof OperatorError && err.kind === "tls",
      );
      const op = await OperatorClient.start();
      try {
        const res = await op.connect({
          jid: "plain@iot.test",
          password: "plain-pw",
          host: prosody.host,
          port: prosody.port,
          tls: "none",
        });
        assert.equal(res.tls, false);
      } finally {
        await op.stop();
      }
    } finally {
      await prosody.stop();
    }
  });
});

describe("harness: link-breaking proxy on plain TCP", () => {
  let echo: Server;
  let echoPort: number;
  before(async () => {
    echo = createServer((s) => {
      // proxy.reset() RSTs the upstream side too; the echo server must just let it go.
      s.on("error", () => s.destroy());
      s.pipe(s);
    });
    await new Promise<void>((r) => echo.listen(0, "127.0.0.1", r));
    echoPort = (echo.address() as { port: number }).port;
  });
  after(() => new Promise<void>((r) => echo.close(() => r())));

  const open = (port: number): Promise<Socket> =>
    new Promise((resolve, reject) => {
      const s = connect({ host: "127.0.0.1", port }, () => resolve(s));
      s.once("error", reject);
    });
  const roundTrip = (s: Socket, text: string, timeoutMs: number): Promise<string | null> =>
    new Promise((resolve) => {
      const t = setTimeout(() => {
        s.off("data", onData);
        resolve(null);
      }, timeoutMs);
      const onData = (d: Buffer): void => {
        clearTimeout(t);
        resolve(d.toString());
      };
      s.once("data", onData);
      s.write(text);
    });

  test("passes bytes, then reset kills the connection", async () => {
    const proxy = await startProxy({ targetPort: echoPort });
    try {
      const s = await open(proxy.port);
      assert.equal(await roundTrip(s, "ping", 2000), "ping");
      const closed = new Promise<string>((r) => {
        s.once("error", (e: NodeJS.ErrnoException) => r(e.code ?? "error"));
        s.once("close", () => r("close"));
      });
      proxy.reset();
      assert.match(await closed, /ECONNRESET|close/);
      assert.ok(proxy.counters.bytesToServer >= 4 && proxy.counters.bytesToClient >= 4);
    } finally {
      await proxy.stop();
    }
  });

  test("blackhole drops bytes silently, turning it off restores flow", async () => {
    const proxy = await startProxy({ targetPort: echoPort });
    try {
      const s = await open(proxy.port);
      proxy.blackhole(true);
      assert.equal(await roundTrip(s, "lost", 300), null);
      assert.ok(proxy.counters.bytesDropped >= 4);
      assert.equal(s.destroyed, false);
      proxy.blackhole(false);
      assert.equal(await roundTrip(s, "back", 2000), "back");
      s.destroy();
    } finally {
      await proxy.stop();
    }
  });

  test("inject writes raw bytes to the client; refuse makes new connections fail", async () => {
    const proxy = await startProxy({ targetPort: echoPort });
    try {
      const s = await open(proxy.port);
      await proxy.waitForActive(1);
      const got = new Promise<string>((r) => s.once("data", (d: Buffer) => r(d.toString())));
      assert.equal(proxy.inject("<garbage"), 1);
      assert.equal(await got, "<garbage");
      s.destroy();
      await proxy.refuse(true);
      await assert.rejects(open(proxy.port), /ECONNREFUSED/);
      await proxy.refuse(false);
      (await open(proxy.port)).destroy();
    } finally {
      await proxy.stop();
    }
  });
});

describe("harness: socat PTY pair", () => {
  test("all 256 byte values pass unchanged; unplug removes the links; restart replugs", async () => {
    const pair = await startPtyPair();
    try {
      const payload = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      const received = await transfer(pair.a, pair.b, payload);
      assert.deepEqual(received, payload);
      await pair.unplug();
      assert.equal(existsSync(pair.a) || existsSync(pair.b), false);
      await pair.restart();
      assert.ok(existsSync(pair.a) && existsSync(pair.b));
      assert.deepEqual(await transfer(pair.b, pair.a, Buffer.from("replugged")), Buffer.from("replugged"));
    } finally {
      await pair.stop();
    }
  });
});

/** Writes `data` into PTY `from` and reads the same number of bytes from PTY `to`. */
async function transfer(from: string, to: string, data: Buffer): Promise<Buffer> {
  // O_NOCTTY: never let a PTY become this process's controlling terminal.
  const flags = constants.O_RDWR | constants.O_NOCTTY;
  const rfd = openSync(to, flags);
  const wfd = openSync(from, flags);
  const reader = new ReadStream(rfd);
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    const done = new Promise<Buffer>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`PTY transfer: got ${total} of ${data.length} bytes`)), 3000);
      reader.on("data", (d: Buffer) => {
        chunks.push(d);
        total += d.length;
        if (total >= data.length) {
          clearTimeout(t);
          resolve(Buffer.concat(chunks));
        }
      });
    });
    writeSync(wfd, data);
    return await done;
  } finally {
    reader.destroy();
    closeSync(wfd);
  }
}

describe("harness: ejabberd", () => {
  test("starts and a slixmpp client logs in over STARTTLS", {
    skip: ejabberdInstalled() ? false : "ejabberd is not installed (scripts/setup installs it)",
  }, async () => {
    const ejabberd = await startEjabberd();
    try {
      await ejabberd.register("alice", "alice-pw");
      const op = await OperatorClient.login(ejabberd, "alice", "alice-pw");
      try {
        assert.match(op.jid ?? "", /^alice@iot\.test\//);
        const info = await op.discoInfo(ejabberd.pubsubJid);
        assert.ok(info.features.includes("http://jabber.org/protocol/pubsub"));
      } finally {
        await op.stop();
      }
    } finally {
      await ejabberd.stop();
    }
  });
});

test("harness: nothing left registered after the suites stopped their peers", () => {
  // Temp dirs created via makeTempDir() and removed above are unregistered too.
  assert.deepEqual(
    pendingTeardowns().filter((n) => !n.startsWith("tmp ")),
    [],
  );
});
