/**
 * SCRAM-SHA-1 key derivation, 10,000 iterations: one native PBKDF2 call (what xmpp/sasl does)
 * against 10,000 sequential WebCrypto HMAC calls (what @xmpp/client 0.14 does through
 * sasl-scram-sha-1's bitops.Hi: importKey + sign per iteration, XOR into a fresh array).
 * Both baselines run in the same process; the result of each is checked against the other.
 *
 * Run: node --import tsx bench/scram.ts [--runs N]
 * A script that prints figures, not a timed test: numbers depend on the machine and its load.
 */
import { pbkdf2Sync, webcrypto } from "node:crypto";
import { createRequire } from "node:module";
import { performance } from "node:perf_hooks";
import { SaltedPasswordCache } from "../xmpp/sasl/cache.js";
import { ScramMechanism } from "../xmpp/sasl/scram.js";

const ITERATIONS = 10_000;
const PASSWORD = "pencil";
const SALT = Buffer.from("QSXCR+Q6sek8bf92", "base64");
const runsArg = process.argv.indexOf("--runs");
const RUNS = runsArg > 0 ? Math.max(1, Number(process.argv[runsArg + 1]) || 5) : 5;

type Hi = (text: string, salt: Uint8Array, iterations: number) => Promise<Uint8Array>;

/** The same algorithm as sasl-scram-sha-1 1.3.0 lib/bitops.js, used only if that package is not installed. */
const replicaHi: Hi = async (text, salt, iterations) => {
  const hmac = async (key: Uint8Array, msg: Uint8Array) => {
    const k = await webcrypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-1" }, false, ["sign"]);
    return new Uint8Array(await webcrypto.subtle.sign("HMAC", k, msg));
  };
  const xor = (a: Uint8Array, b: Uint8Array) => {
    const res: number[] = [];
    for (let i = 0; i < Math.min(a.length, b.length); i++) res.push(a[i]! ^ b[i]!);
    return new Uint8Array(res);
  };
  const key = new TextEncoder().encode(text);
  const first = new Uint8Array(salt.length + 4);
  first.set(salt);
  first.set([0, 0, 0, 1], salt.length);
  let u = await hmac(key, first);
  let acc = u;
  for (let i = 0; i < iterations - 1; i++) {
    u = await hmac(key, u);
    acc = xor(acc, u);
  }
  return acc;
};

function loadXmppJsHi(): { hi: Hi; source: string } {
  try {
    // Resolved through @xmpp/sasl-scram-sha-1, as @xmpp/client loads it.
    const req = createRequire(createRequire(import.meta.url).resolve("@xmpp/sasl-scram-sha-1"));
    const bitops = req("sasl-scram-sha-1/lib/bitops.js") as { Hi: Hi };
    return { hi: bitops.Hi, source: "sasl-scram-sha-1/lib/bitops.js (as used by @xmpp/client 0.14)" };
  } catch {
    return { hi: replicaHi, source: "in-file replica of sasl-scram-sha-1 bitops.Hi (package not found)" };
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

async function time(fn: () => unknown | Promise<unknown>, runs: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    out.push(performance.now() - t0);
  }
  return out;
}

const fmt = (ms: number) => `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;

async function main(): Promise<void> {
  const { hi, source } = loadXmppJsHi();

  const native = pbkdf2Sync(PASSWORD, SALT, ITERATIONS, 20, "sha1");
  const subtle = Buffer.from(await hi(PASSWORD, SALT, ITERATIONS));
  if (!native.equals(subtle)) throw new Error("the two derivations disagree; the comparison would be meaningless");

  // One warm-up each, then the measured runs.
  pbkdf2Sync(PASSWORD, SALT, ITERATIONS, 20, "sha1");
  const nativeMs = median(await time(() => pbkdf2Sync(PASSWORD, SALT, ITERATIONS, 20, "sha1"), Math.max(RUNS, 20)));
  const subtleMs = median(await time(() => hi(PASSWORD, SALT, ITERATIONS), RUNS));
  const native256Ms = median(
    await time(() => pbkdf2Sync(PASSWORD, SALT, ITERATIONS, 32, "sha256"), Math.max(RUNS, 20)),
  );

  // A whole client side of a SCRAM-SHA-1 exchange (minus the network), cold and with the cache.
  const serverFirst = (nonce: string) => Buffer.from(`r=${nonce}srv,s=${SALT.toString("base64")},i=${ITERATIONS}`);
  const exchange = (cache?: SaltedPasswordCache) => {
    const m = new ScramMechanism(
      { username: "user", password: PASSWORD },
      { hash: "SHA-1", clientNonce: "n0nce", ...(cache ? { cache } : {}) },
    );
    m.initialResponse();
    m.challenge(serverFirst("n0nce"));
  };
  const cache = new SaltedPasswordCache();
  exchange(cache);
  const coldMs = median(await time(() => exchange(), Math.max(RUNS, 20)));
  const cachedMs = median(await time(() => exchange(cache), Math.max(RUNS, 20)));

  const row = (label: string, value: string) => console.log(`  ${label.padEnd(44)} ${value}`);
  console.log(`SCRAM-SHA-1 SaltedPassword, ${ITERATIONS} iterations (Node ${process.version}, ${process.arch})`);
  row("native crypto.pbkdf2Sync (one call):", `${fmt(nativeMs)}  (median of ${Math.max(RUNS, 20)})`);
  row(`${ITERATIONS} sequential crypto.subtle HMACs:`, `${fmt(subtleMs)}  (median of ${RUNS})`);
  row("  source:", source);
  row("ratio subtle / native:", `${(subtleMs / nativeMs).toFixed(0)}x`);
  row("SCRAM-SHA-256, native, same iterations:", fmt(native256Ms));
  row("ScramMechanism client-final, cold:", fmt(coldMs));
  row("ScramMechanism client-final, cache hit:", fmt(cachedMs));
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
