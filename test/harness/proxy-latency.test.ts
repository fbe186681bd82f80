/**
 * The proxy's added latency and flight counting, against a local echo server (no XMPP peer). Time
 * bounds are loose on purpose: a delay must never be shorter than asked, but a busy 2-core machine
 * may make it much longer, so upper bounds are 10x.
 *
 * Run: node --import tsx --test test/harness/proxy-latency.test.ts
 */
import assert from "node:assert/strict";
import { connect, createServer, type Server, type Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import { HarnessError } from "./errors.js";
import { type LinkBreakingProxy, startProxy } from "./proxy.js";

describe("harness: proxy latency and flights", () => {
  let echo: Server;
  let echoPort: number;
  /** Bytes the echo server received, over all connections: shows what reached the server. */
  let echoReceived = 0;
  before(async () => {
    echo = createServer((s) => {
      // reset() RSTs the upstream side too; the echo server must just let it go.
      s.on("error", () => s.destroy());
      s.on("data", (d: Buffer) => {
        echoReceived += d.length;
      });
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

  /** Collects echoed bytes until `length` have arrived; rejects after timeoutMs. */
  const readExactly = (s: Socket, length: number, timeoutMs: number): Promise<string> =>
    new Promise((resolve, reject) => {
      let got = "";
      const t = setTimeout(() => {
        s.off("data", onData);
        reject(new Error(`only ${got.length} of ${length} bytes within ${timeoutMs} ms`));
      }, timeoutMs);
      const onData = (d: Buffer): void => {
        got += d.toString();
        if (got.length < length) return;
        clearTimeout(t);
        s.off("data", onData);
        resolve(got);
      };
      s.on("data", onData);
    });

  const withProxy = async (latencyMs: number, body: (p: LinkBreakingProxy) => Promise<void>): Promise<void> => {
    const proxy = await startProxy({ targetPort: echoPort, latencyMs });
    try {
      await body(proxy);
    } finally {
      await proxy.stop();
    }
  };

  test("latency 0 forwards as before and counts one flight each way", () =>
    withProxy(0, async (proxy) => {
      const s = await open(proxy.port);
      s.write("ping");
      assert.equal(await readExactly(s, 4, 2000), "ping");
      assert.equal(proxy.counters.flightsToServer, 1);
      assert.equal(proxy.counters.flightsToClient, 1);
      s.destroy();
    }));

  test("each direction is delayed by at least latencyMs", () =>
    withProxy(100, async (proxy) => {
      const s = await open(proxy.port);
      const t0 = performance.now();
      s.write("x");
      assert.equal(await readExactly(s, 1, 5000), "x");
      const rtt = performance.now() - t0;
      assert.ok(rtt >= 200, `echo after ${rtt.toFixed(1)} ms, expected >= 200 (2 x 100 ms)`);
      assert.ok(rtt < 2000, `echo after ${rtt.toFixed(1)} ms, expected well under 2000`);
      s.destroy();
    }));

  test("chunks keep their order, also when the latency drops mid-stream", () =>
    withProxy(80, async (proxy) => {
      const s = await open(proxy.port);
      // Node coalesces writes of one tick into one segment at most; spreading them over ticks and
      // lowering the latency in between gives later chunks an earlier due time than earlier ones.
      const parts: string[] = [];
      for (let i = 0; i < 40; i++) parts.push(`<${i}:${"y".repeat(i % 7)}>`);
      const expected = parts.join("");
      const reading = readExactly(s, expected.length, 10_000);
      for (const [i, p] of parts.entries()) {
        s.write(p);
        if (i === 20) proxy.setLatency(0);
        await new Promise((r) => setImmediate(r));
      }
      assert.equal(await reading, expected);
      assert.equal(proxy.latencyMs, 0);
      s.destroy();
    }));

  test("a client's close travels behind the data it sent before it", () =>
    withProxy(60, async (proxy) => {
      // The proxy does not keep half-open links (as before latency existed): the client's FIN
      // closes the link, but only once the bytes sent before it have reached the server.
      const before = echoReceived;
      const s = await open(proxy.port);
      await proxy.waitForActive(1);
      s.end("last words");
      await proxy.waitForActive(0, 5000);
      // The echo server reads in its own time; the bytes must arrive, not be lost to the close.
      const deadline = Date.now() + 5000;
      while (echoReceived - before < 10 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.equal(echoReceived - before, 10);
      assert.equal(proxy.counters.bytesToServer, 10);
    }));

  test("reset drops what is still queued; nothing reaches the server", () =>
    withProxy(300, async (proxy) => {
      const before = echoReceived;
      const s = await open(proxy.port);
      s.on("error", () => undefined);
      await proxy.waitForActive(1);
      s.write("never delivered");
      await new Promise((r) => setTimeout(r, 30));
      proxy.reset();
      await new Promise((r) => setTimeout(r, 400));
      assert.equal(echoReceived, before);
      assert.equal(proxy.counters.bytesToServer, 0);
      assert.equal(proxy.counters.bytesDropped, 15);
      s.destroy();
    }));

  test("blackhole drops what is still queued, the link stays usable after", () =>
    withProxy(200, async (proxy) => {
      const before = echoReceived;
      const s = await open(proxy.port);
      s.write("lost");
      await new Promise((r) => setTimeout(r, 30));
      proxy.blackhole(true);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(echoReceived, before);
      assert.equal(proxy.counters.bytesDropped, 4);
      proxy.blackhole(false);
      s.write("back");
      assert.equal(await readExactly(s, 4, 5000), "back");
      s.destroy();
    }));

  test("connectionLog shows the flights of each connection: three exchanges, three round trips", () =>
    withProxy(20, async (proxy) => {
      const first = await open(proxy.port);
      for (const word of ["one", "two", "three"]) {
        first.write(word);
        assert.equal(await readExactly(first, word.length, 5000), word);
      }
      first.destroy();
      const second = await open(proxy.port);
      second.write("solo");
      await readExactly(second, 4, 5000);
      second.destroy();

      const log = proxy.connectionLog();
      assert.deepEqual(
        log.map((c) => c.id),
        [1, 2],
      );
      const flights = log[0]!.flights;
      assert.deepEqual(
        flights.map((f) => `${f.dir}:${f.bytes}`),
        ["c2s:3", "s2c:3", "c2s:3", "s2c:3", "c2s:5", "s2c:5"],
      );
      for (let i = 1; i < flights.length; i++) assert.ok(flights[i]!.atMs >= flights[i - 1]!.atMs);
      // A s2c flight arrives one latency after its c2s flight left the client, at the earliest.
      assert.ok(flights[1]!.atMs - flights[0]!.atMs >= 20);
      assert.equal(proxy.counters.flightsToServer, 4);
      assert.equal(proxy.counters.flightsToClient, 4);
      assert.equal(log[1]!.flights.length, 2);
    }));

  test("a negative or non-finite latency is refused", async () => {
    await assert.rejects(startProxy({ targetPort: echoPort, latencyMs: -1 }), HarnessError);
    await withProxy(0, async (proxy) => {
      assert.throws(() => proxy.setLatency(Number.NaN), HarnessError);
      assert.equal(proxy.latencyMs, 0);
    });
  });
});
