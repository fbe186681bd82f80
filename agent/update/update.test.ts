/**
 * The device side of an update, on real files, the system's tar and a loopback HTTP server: a
 * release built and signed by the fleet tool's code, checked, downloaded with its bounds, unpacked,
 * switched to, and the boot guard's trial and rollback.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type FleetCa, initCa, loadCa } from "../../provisioning/ca.js";
import { buildRelease, type BuiltRelease } from "../../provisioning/release/build.js";
import { RELEASE_NAME, signRelease } from "../../provisioning/release/manifest.js";
import { bootGuard } from "./boot-guard.js";
import { checkRelease, type RunningAgent } from "./check.js";
import { downloadRelease } from "./download.js";
import { UpdateError } from "./errors.js";
import { READS, WRITES } from "./formats.js";
import { checkArchiveNames, ReleaseLayout } from "./layout.js";
import { readUpdateState, writeUpdateState } from "./state.js";

const root = mkdtempSync(join(tmpdir(), "iot-update-"));
const HERE: RunningAgent = {
  version: "0.1.0",
  node: { abi: process.versions.modules, platform: process.platform, arch: process.arch },
};

function makeCa(name: string): FleetCa {
  const dir = join(root, name);
  initCa({ dir, subject: { commonName: `${name} fleet CA` }, keyBits: 2048, now: new Date("2026-01-01T00:00:00Z") });
  return loadCa({ dir });
}

/** What a release's bin/iot-agent.js answers to `--version` and `--data-formats`. */
function standInLauncher(version: string, formats: Record<string, number> = WRITES): string {
  return `console.log(process.argv.includes("--data-formats") ? ${JSON.stringify(JSON.stringify(formats))} : ${JSON.stringify(`${RELEASE_NAME} ${version}`)});\n`;
}

/** An agent directory as `npm run build && npm prune --omit=dev` leaves it, reduced to a stand-in. */
function agentTree(version: string): string {
  const dir = join(root, `tree-${version}-${Math.random().toString(36).slice(2)}`);
  for (const d of ["bin", "dist", "node_modules/dep"]) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, "bin", "iot-agent.js"), standInLauncher(version));
  writeFileSync(join(dir, "dist", "iot-agent.cjs"), `module.exports = { version: ${JSON.stringify(version)} };\n`);
  writeFileSync(join(dir, "node_modules", "dep", "index.js"), "module.exports = 1;\n".repeat(200));
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: RELEASE_NAME, version }));
  writeFileSync(join(dir, "package-lock.json"), "{}");
  return dir;
}

function refused(code: string, fn: () => unknown): void {
  assert.throws(fn, (err: unknown) => err instanceof UpdateError && err.code === code, code);
}

async function rejected(code: string, p: Promise<unknown>): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof UpdateError && err.code === code, code);
}

describe("update: release, check, download, unpack, switch, boot guard", () => {
  let ca: FleetCa;
  let other: FleetCa;
  let rel: BuiltRelease;
  let server: Server;
  let base: string;
  const bodies = new Map<string, Buffer>();

  before(async () => {
    ca = makeCa("fleet");
    other = makeCa("other");
    rel = await buildRelease({ sourceDir: agentTree("0.2.0"), outDir: join(root, "out"), ca });
    bodies.set("/r.tar.gz", readFileSync(rel.archiveFile));
    server = createServer((req, res) => {
      const body = bodies.get(req.url ?? "");
      if (!body) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { "content-length": body.length }).end(body);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server?.close();
    rmSync(root, { recursive: true, force: true });
  });

  const opts = () => ({
    trust: { caCertPem: ca.certPem },
    running: HERE,
    maxDownloadBytes: 50 * 1024 * 1024,
    freeBytes: 1e12,
    reads: READS,
  });

  it("builds a signed, reproducible release of package.json's version", async () => {
    assert.equal(rel.manifest.version, "0.2.0");
    assert.deepEqual(rel.manifest.dataFormats, WRITES, "what the release's --data-formats said");
    assert.equal(rel.manifest.archive.sha256, createHash("sha256").update(readFileSync(rel.archiveFile)).digest("hex"));
    assert.ok(rel.manifest.minFreeBytes > rel.manifest.archive.size + rel.manifest.archive.unpackedBytes);
    const again = await buildRelease({ sourceDir: agentTree("0.2.0"), outDir: join(root, "out2"), ca });
    assert.equal(again.manifest.archive.sha256, rel.manifest.archive.sha256, "same tree, same bytes");
    assert.deepEqual(checkRelease(rel.signed, opts()), rel.manifest);
  });

  it("refuses a bundle whose launcher reports another version", async () => {
    const tree = agentTree("0.3.0");
    writeFileSync(join(tree, "bin", "iot-agent.js"), standInLauncher("0.2.9"));
    await assert.rejects(
      buildRelease({ sourceDir: tree, outDir: join(root, "out3"), ca }),
      /says "xmpp-iot-agent 0.2.9"/,
    );
  });

  it("refuses a tampered manifest, another CA, the same or an older version, another platform, too large, no room", () => {
    const tampered = structuredClone(rel.signed);
    tampered.payload.archive.sha256 = "0".repeat(64);
    refused("update_untrusted", () => checkRelease(tampered, opts()));
    refused("update_untrusted", () => checkRelease(rel.signed, { ...opts(), trust: { caCertPem: other.certPem } }));
    refused("update_not_newer", () => checkRelease(rel.signed, { ...opts(), running: { ...HERE, version: "0.2.0" } }));
    refused("update_not_newer", () => checkRelease(rel.signed, { ...opts(), running: { ...HERE, version: "0.10.0" } }));
    assert.equal(
      checkRelease(rel.signed, { ...opts(), running: { ...HERE, version: "0.10.0" }, allowDowngrade: true }).version,
      "0.2.0",
    );
    refused("update_wrong_platform", () =>
      checkRelease(rel.signed, { ...opts(), running: { ...HERE, node: { ...HERE.node, abi: "1" } } }),
    );
    refused("update_too_large", () => checkRelease(rel.signed, { ...opts(), maxDownloadBytes: 100 }));
    // A release writing a spool format the running version (the rollback target) cannot read.
    const newSpool = signRelease({ ...rel.manifest, dataFormats: { ...WRITES, spool: 2 } }, ca);
    refused("update_formats", () => checkRelease(newSpool, opts()));
    // A kind of data the running version does not know at all is no obstacle.
    const newKind = signRelease({ ...rel.manifest, dataFormats: { ...WRITES, history: 1 } }, ca);
    assert.equal(checkRelease(newKind, opts()).version, "0.2.0");
    refused("update_no_space", () => checkRelease(rel.signed, { ...opts(), freeBytes: rel.manifest.minFreeBytes - 1 }));
  });

  it("downloads with the size and hash checked; a wrong hash, a longer body or a 404 leave no file", async () => {
    const dir = join(root, "dl");
    mkdirSync(dir);
    const { size, sha256 } = rel.manifest.archive;
    const dest = join(dir, "r.tar.gz");
    const got = await downloadRelease({ url: `${base}/r.tar.gz`, dest, size, sha256, timeoutMs: 10_000 });
    assert.equal(got.bytes, size);
    assert.deepEqual(readFileSync(dest), bodies.get("/r.tar.gz"));

    const dest2 = join(dir, "bad.tar.gz");
    await rejected(
      "update_hash_mismatch",
      downloadRelease({ url: `${base}/r.tar.gz`, dest: dest2, size, sha256: "f".repeat(64), timeoutMs: 10_000 }),
    );
    bodies.set("/long", Buffer.concat([bodies.get("/r.tar.gz")!, Buffer.alloc(10)]));
    await rejected(
      "update_download_failed",
      downloadRelease({ url: `${base}/long`, dest: dest2, size, sha256, timeoutMs: 10_000 }),
    );
    await rejected(
      "update_download_failed",
      downloadRelease({ url: `${base}/missing`, dest: dest2, size, sha256, timeoutMs: 10_000 }),
    );
    await rejected(
      "update_download_failed",
      downloadRelease({ url: "file:///etc/passwd", dest: dest2, size, sha256, timeoutMs: 10_000 }),
    );
    assert.equal(existsSync(dest2), false);
    assert.equal(existsSync(`${dest2}.partial`), false);
  });

  it("unpacks as releases/VERSION, switches current atomically, keeps previous", async () => {
    const layout = new ReleaseLayout(join(root, "dev1"));
    const v1 = await buildRelease({ sourceDir: agentTree("0.1.0"), outDir: join(root, "out-v1"), ca });
    await layout.install(v1.archiveFile, v1.manifest);
    layout.switchTo("0.1.0");
    await layout.install(rel.archiveFile, rel.manifest);
    assert.equal(readFileSync(join(layout.dirOf("0.2.0"), "bin", "iot-agent.js"), "utf8").includes("0.2.0"), true);
    layout.switchTo("0.2.0");
    assert.equal(layout.current(), "0.2.0");
    assert.equal(layout.previous(), "0.1.0");
    assert.equal(readlinkSync(layout.currentLink), join("releases", "0.2.0"), "relative: the tree can move");
    assert.deepEqual(layout.installed().sort(), ["0.1.0", "0.2.0"]);
    refused("update_io", () => layout.switchTo("0.9.0"));
  });

  it("an unpack cut short leaves no release under its version, and is redone", async () => {
    const layout = new ReleaseLayout(join(root, "dev2"));
    mkdirSync(join(layout.releasesDir, ".staging-0.2.0", "bin"), { recursive: true });
    assert.equal(layout.has("0.2.0"), false);
    await layout.install(rel.archiveFile, rel.manifest);
    assert.equal(layout.has("0.2.0"), true);
    assert.equal(existsSync(join(layout.releasesDir, ".staging-0.2.0")), false);
  });

  it("refuses archive members outside a release's layout", () => {
    checkArchiveNames(["bin/", "bin/iot-agent.js", "./dist/x.cjs", "node_modules/a/b.js"]);
    for (const bad of ["/etc/passwd", "bin/../../x", "etc/shadow", "../x"])
      refused("update_archive_invalid", () => checkArchiveNames([bad]));
  });

  it("boot guard: counts the starts of a trial, rolls back after maxStarts, leaves other states alone", async () => {
    const layout = new ReleaseLayout(join(root, "dev3"));
    const v1 = await buildRelease({ sourceDir: agentTree("0.1.0"), outDir: join(root, "out-g1"), ca });
    await layout.install(v1.archiveFile, v1.manifest);
    await layout.install(rel.archiveFile, rel.manifest);
    layout.switchTo("0.1.0");
    assert.deepEqual(bootGuard(layout), { action: "run", version: "0.1.0" });
    writeUpdateState(layout.root, {
      phase: "trial",
      from: "0.1.0",
      to: "0.2.0",
      starts: 0,
      maxStarts: 2,
      switchedAt: "t",
    });
    layout.switchTo("0.2.0");
    assert.deepEqual(bootGuard(layout), { action: "trial", version: "0.2.0", start: 1, of: 2 });
    assert.deepEqual(bootGuard(layout), { action: "trial", version: "0.2.0", start: 2, of: 2 });
    const out = bootGuard(layout);
    assert.equal(out.action, "rolled-back");
    assert.equal(layout.current(), "0.1.0");
    const st = readUpdateState(layout.root);
    assert.equal(st?.phase, "rolled-back");
    assert.match(st?.phase === "rolled-back" ? st.reason : "", /2 starts without passing the health check/);
    assert.deepEqual(bootGuard(layout), { action: "run", version: "0.1.0" }, "nothing more to do");
  });

  it("boot guard: a trial whose switch never happened ends, on the release that runs", async () => {
    const layout = new ReleaseLayout(join(root, "dev4"));
    await layout.install(rel.archiveFile, rel.manifest);
    const v1 = await buildRelease({ sourceDir: agentTree("0.1.0"), outDir: join(root, "out-g2"), ca });
    await layout.install(v1.archiveFile, v1.manifest);
    layout.switchTo("0.1.0");
    writeUpdateState(layout.root, {
      phase: "trial",
      from: "0.1.0",
      to: "0.2.0",
      starts: 0,
      maxStarts: 3,
      switchedAt: "t",
    });
    const out = bootGuard(layout);
    assert.deepEqual({ action: out.action, version: out.version }, { action: "rolled-back", version: "0.1.0" });
    assert.equal(layout.current(), "0.1.0");
  });
});
