/**
 * Over-the-air update end to end (issue 17, docs/update.md), against a real Prosody 0.12 whose
 * mod_http_file_share holds the releases, and a real ejabberd 23.01 with mod_http_upload (XEP-0363,
 * over https on 127.0.0.1 with the harness CA; on ejabberd the good update and the crash rollback).
 * The device is the agent as a process (`bin/iot-agent.js run`) under a supervisor that restarts it
 * as systemd's Restart=on-failure would, with IOT_AGENT_RELEASES_DIR set as in the unit. Its base
 * install is this checkout (0.1.0); releases are built from this checkout's bundles by the fleet
 * tool's code (`buildRelease`), with the version changed:
 *   0.2.0   a good release: installed, restarted into, committed;
 *   refused with nothing changed: a tampered manifest, a downgrade, an archive over the device's
 *           bound, a wrong hash (found after the download);
 *   0.3.0   crashes at every start: the boot guard rolls back to 0.2.0 after update.maxStarts;
 *   0.3.1   starts but never gets online: the health check rolls back after healthDeadlineMs;
 *   0.4.0   good, but the agent is killed (SIGKILL) during its download (from a slow source), then
 *           at the first start of the new release; 0.4.1 killed during its health check: the device
 *           comes back each time on a release it can run, and ends on each committed;
 *   0.5.0   through `iot-fleet update` (upload to the share, a job, the outcome).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { Element } from "ltx";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { openClientSession } from "../../fleet-sim/client-session.js";
import { type FleetCa, initCa, loadCa } from "../../provisioning/ca.js";
import { buildRelease, type BuiltRelease } from "../../provisioning/release/build.js";
import { type ReleaseManifest, signRelease } from "../../provisioning/release/manifest.js";
import { uploadFile } from "../../provisioning/release/upload.js";
import { main as fleetMain } from "../../provisioning/cli.js";
import { isProvisioningError } from "../../provisioning/errors.js";
import { addProvisioned, FleetStore, markEnrolled } from "../../provisioning/store.js";
import { executeAdhoc } from "../../provisioning/xmpp-admin.js";
import type { XmppSession } from "../../xmpp/session.js";
import { agentConfigHead, simTemperatureBoard } from "../harness/composed-agent.js";
import { type Certificate, createCertificate } from "../harness/certs.js";
import { freePort } from "../harness/ports.js";
import { type ProsodyHandle, startProsody } from "../harness/prosody.js";
import { ejabberdInstalled, startEjabberd } from "../harness/ejabberd.js";
import { AgentSupervisor } from "../harness/supervisor.js";
import { makeTempDir, type TempDir } from "../harness/tmp.js";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const BASE_VERSION = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")).version as string;
const DEVICE = "dev-ota";
const DEVICE_PW = "ota-device-pw";
const OPERATOR_PW = "ota-operator-pw";
const ADMIN_PW = "ota-admin-pw";
const MAX_STARTS = 2;
const HEALTH_DEADLINE_MS = 8000;

/** What the suite needs of a server: XMPP on `port`, a pubsub service, an XEP-0363 service on https. */
interface OtaServer {
  port: number;
  caFile: string;
  certPem: string;
  /** The XEP-0363 upload service's JID. */
  share: string;
  register(user: string, password: string): Promise<void>;
  stop(): Promise<void>;
}

type ServerStarter = (dir: string, cert: Certificate, httpsPort: number) => Promise<OtaServer>;

const startProsodyShare: ServerStarter = async (_dir, cert, httpsPort) => {
  const share = "share.iot.test";
  const lua = (s: string) => JSON.stringify(s);
  const p: ProsodyHandle = await startProsody({
    certificate: cert,
    logLevel: "info",
    // The device creates its own telemetry nodes (Prosody lets only admins create them).
    pubsubAdmins: [`${DEVICE}@iot.test`],
    // The fleet admin: iot-fleet lists who is online (XEP-0133).
    admins: ["admin@iot.test"],
    extraGlobalLua: [
      `https_ports = { ${httpsPort} }`,
      `https_ssl = { certificate = ${lua(cert.certFile)}, key = ${lua(cert.keyFile)} }`,
      `http_external_url = "https://127.0.0.1:${httpsPort}/"`,
      "http_max_content_size = 64 * 1024 * 1024",
      `Component ${lua(share)} "http_file_share"`,
      // Served for the host the URLs name (the share's own name does not resolve here).
      '  http_host = "127.0.0.1"',
      "  http_file_share_size_limit = 64 * 1024 * 1024",
      "  http_file_share_daily_quota = 1024 * 1024 * 1024",
    ].join("\n"),
  });
  return {
    port: p.port,
    caFile: p.caFile!,
    certPem: cert.certPem,
    share,
    register: (u, pw) => p.register(u, pw),
    stop: () => p.stop(),
  };
};

const startEjabberdUpload: ServerStarter = async (dir, cert, httpsPort) => {
  const docroot = join(dir, "upload");
  mkdirSync(docroot, { recursive: true });
  const url = `https://127.0.0.1:${httpsPort}/upload`;
  const e = await startEjabberd({
    certificate: cert,
    nodeCreators: "local",
    admins: ["admin@iot.test"],
    extraListenersYaml: [
      "  -",
      `    port: ${httpsPort}`,
      '    ip: "127.0.0.1"',
      "    module: ejabberd_http",
      "    tls: true",
      "    request_handlers:",
      "      /upload: mod_http_upload",
    ].join("\n"),
    extraModulesYaml: [
      "  mod_http_upload:",
      `    put_url: "${url}"`,
      `    docroot: "${docroot}"`,
      "    max_size: 67108864",
      "    thumbnail: false",
    ].join("\n"),
  });
  return {
    port: e.port,
    caFile: e.caFile,
    certPem: cert.certPem,
    share: "upload.iot.test",
    register: (u, pw) => e.register(u, pw),
    stop: () => e.stop(),
  };
};

/** Serves `body` at /release.tar.gz over plain HTTP on 127.0.0.1, `bytesPerSecond` at most. */
async function slowHttp(body: Buffer, bytesPerSecond: number): Promise<{ url: string; close: () => void }> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-length": body.length });
    const chunk = Math.max(1, Math.floor(bytesPerSecond / 10));
    let off = 0;
    const timer = setInterval(() => {
      if (res.destroyed || off >= body.length) {
        clearInterval(timer);
        res.end();
        return;
      }
      res.write(body.subarray(off, off + chunk));
      off += chunk;
    }, 100);
    res.on("close", () => clearInterval(timer));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/release.tar.gz`,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

const SERVERS: Array<{ name: string; start: ServerStarter; skip: string | false; full: boolean }> = [
  { name: "Prosody 0.12 with mod_http_file_share", start: startProsodyShare, skip: false, full: true },
  {
    name: "ejabberd 23.01 with mod_http_upload",
    start: startEjabberdUpload,
    skip: ejabberdInstalled() ? false : "ejabberd is not installed",
    full: false,
  },
];

for (const kind of SERVERS)
  describe(`over-the-air update on ${kind.name}`, { skip: kind.skip }, () => {
    let dir: TempDir;
    let xmpp: OtaServer;
    /** Registered only where the whole suite runs (Prosody); ejabberd runs the update and the crash rollback. */
    const itFull = kind.full ? it : () => undefined;
    let ca: FleetCa;
    let op: XmppSession;
    let device: AgentSupervisor;
    let distDir: string;
    let home: string;
    let stateDir: string;
    const deviceJid = `${DEVICE}@iot.test/agent`;
    const urls = new Map<string, string>();
    const releases = new Map<string, BuiltRelease>();

    /** A release tree: this checkout's bin/ and bundles, reporting `version`; `wrap` replaces the agent bundle's entry. */
    function tree(version: string, wrap?: (realFile: string) => string): string {
      const t = join(dir.path, `tree-${version}`);
      mkdirSync(join(t, "node_modules"), { recursive: true });
      writeFileSync(join(t, "node_modules", ".keep"), "native addons would be here\n");
      cpSync(join(REPO, "bin"), join(t, "bin"), { recursive: true });
      cpSync(distDir, join(t, "dist"), { recursive: true });
      cpSync(join(REPO, "package-lock.json"), join(t, "package-lock.json"));
      const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8"));
      writeFileSync(join(t, "package.json"), JSON.stringify({ ...pkg, version }, null, 2));
      const bundle = join(t, "dist", "iot-agent.cjs");
      const text = readFileSync(bundle, "utf8");
      assert.equal(text.split(`"${BASE_VERSION}"`).length - 1, 1, "the bundle names the version once");
      writeFileSync(bundle, text.replace(`"${BASE_VERSION}"`, `"${version}"`));
      if (wrap) {
        cpSync(bundle, join(t, "dist", "iot-agent-real.cjs"));
        writeFileSync(bundle, wrap("./iot-agent-real.cjs"));
      }
      return t;
    }

    async function release(version: string, wrap?: (realFile: string) => string): Promise<BuiltRelease> {
      const r = await buildRelease({ sourceDir: tree(version, wrap), outDir: join(dir.path, "releases-out"), ca });
      const up = await uploadFile({ session: op, service: xmpp.share, file: r.archiveFile, ca: xmpp.certPem });
      console.log(`# ${kind.name}: release ${version}: ${r.manifest.archive.size} bytes, uploaded in ${up.ms} ms`);
      urls.set(version, up.getUrl);
      releases.set(version, r);
      return r;
    }

    function manifestLines(doc: unknown): string[] {
      return JSON.stringify(doc, null, 2).split("\n");
    }

    /** The command's answer; a refusal (XEP-0050 status completed with an error note) comes back as its text. */
    async function submit(
      doc: unknown,
      url: string,
      allowDowngrade = false,
    ): Promise<{ status: string; text: string }> {
      try {
        const r = await executeAdhoc(
          op,
          deviceJid,
          "update",
          { manifest: manifestLines(doc), url, "allow-downgrade": String(allowDowngrade) },
          { timeoutMs: 20_000 },
        );
        return { status: r.status, text: r.notes.map((n) => n.text).join(" ") };
      } catch (err) {
        if (isProvisioningError(err, "adhoc_failed")) return { status: "failed", text: err.message };
        throw err;
      }
    }

    async function status(): Promise<Record<string, string> | undefined> {
      try {
        const r = await executeAdhoc(op, deviceJid, "update", {}, { timeoutMs: 5000 });
        return Object.fromEntries(Object.entries(r.values).map(([k, v]) => [k, v.join("\n")]));
      } catch {
        return undefined; // offline, restarting
      }
    }

    /** The <update/> of the device's status item, once `ok` holds for it. */
    async function waitStatusItemUpdate(ok: (u: Element) => boolean, timeoutMs = 30_000): Promise<Element> {
      const t0 = Date.now();
      for (;;) {
        const iq = new Element("iq", { type: "get", to: "pubsub.iot.test" })
          .c("pubsub", { xmlns: "http://jabber.org/protocol/pubsub" })
          .c("items", { node: `devices/${DEVICE}/status`, max_items: "1" })
          .root();
        const answer = await op.request(iq).catch(() => undefined);
        const u = answer
          ?.getChild("pubsub", "http://jabber.org/protocol/pubsub")
          ?.getChild("items")
          ?.getChild("item")
          ?.getChild("status")
          ?.getChild("update");
        if (u && ok(u)) return u;
        if (Date.now() - t0 > timeoutMs) throw new Error(`no status item <update/> as expected: ${u?.toString()}`);
        await new Promise((r) => setTimeout(r, 500));
      }
    }

    async function waitStatus(what: string, ok: (s: Record<string, string>) => boolean, timeoutMs = 90_000) {
      const t0 = Date.now();
      let last: Record<string, string> | undefined;
      while (Date.now() - t0 < timeoutMs) {
        last = await status();
        if (last && ok(last)) return { status: last, ms: Date.now() - t0 };
        await new Promise((r) => setTimeout(r, 500));
      }
      throw new Error(`${what}: not within ${timeoutMs} ms; last status ${JSON.stringify(last)}\n${device.tail()}`);
    }

    before(async () => {
      dir = makeTempDir("iot-ota-");
      const cert = await createCertificate({
        dir: dir.path,
        host: "iot.test",
        altNames: ["pubsub.iot.test", "share.iot.test", "upload.iot.test"],
        ipAltNames: ["127.0.0.1"],
      });
      xmpp = await kind.start(dir.path, cert, await freePort());
      await xmpp.register(DEVICE, DEVICE_PW);
      await xmpp.register("operator", OPERATOR_PW);
      // The fleet admin's home: its CA signs the releases, its store knows the device.
      home = join(dir.path, "home");
      initCa({ dir: join(home, "ca"), subject: { commonName: "OTA test fleet CA" }, keyBits: 2048 });
      ca = loadCa({ dir: join(home, "ca") });
      await xmpp.register("admin", ADMIN_PW);
      const store = new FleetStore(join(home, "fleet.json"));
      await store.update((data) => {
        addProvisioned(
          data,
          { id: DEVICE, jid: `${DEVICE}@iot.test`, credentialPath: "invite", bundleId: "b-ota" },
          new Date(),
        );
        markEnrolled(data, DEVICE, new Date());
      });
      writeFileSync(join(dir.path, "admin.pw"), ADMIN_PW, { mode: 0o600 });
      distDir = join(dir.path, "dist");
      execFileSync(process.execPath, [join(REPO, "scripts/build.mjs"), "--outdir", distDir], {
        cwd: REPO,
        stdio: "ignore",
      });
      op = await openClientSession({
        jid: "operator@iot.test",
        password: OPERATOR_PW,
        server: `127.0.0.1:${xmpp.port}`,
        caFile: xmpp.caFile,
      });

      const state = join(dir.path, "device-state");
      stateDir = state;
      const configFile = join(dir.path, "agent.yaml");
      writeFileSync(
        configFile,
        `${agentConfigHead({
          id: DEVICE,
          dataDir: join(state, "data"),
          port: xmpp.port,
          caFile: xmpp.caFile,
          xmpp: ["reconnect: { initialDelayMs: 200, maxDelayMs: 2000 }"],
          operators: ["operator@iot.test", "admin@iot.test"],
        })}${simTemperatureBoard(500)}telemetry:
  batch: { maxReadings: 5, maxAgeMs: 500 }
update:
  enabled: true
  dir: ${state}
  fleetCaFile: ${join(home, "ca", "ca.cert.pem")}
  downloadCaFile: ${cert.certFile}
  maxDownloadBytes: 33554432
  maxStarts: ${MAX_STARTS}
  healthDeadlineMs: ${HEALTH_DEADLINE_MS}
log:
  level: info
`,
      );
      device = new AgentSupervisor({
        configFile,
        env: { AGENT_PASSWORD: DEVICE_PW, IOT_AGENT_RELEASES_DIR: state },
      });
      device.start();
      await waitStatus("the base install online", (s) => s.running === BASE_VERSION);
    });

    after(async () => {
      await device?.stop();
      await op?.stop();
      await xmpp?.stop();
      dir?.remove();
    });

    it("0.2.0: accepted, downloaded from the file share, restarted into, committed", async () => {
      const r = await release("0.2.0");
      const t0 = Date.now();
      const answer = await submit(r.signed, urls.get("0.2.0")!);
      assert.equal(answer.status, "completed", JSON.stringify(answer));
      assert.match(answer.text, /Accepted 0\.2\.0/);
      const { status: s } = await waitStatus(
        "0.2.0 committed",
        (s) => s.running === "0.2.0" && s.state === "committed",
      );
      console.log(
        `# ${kind.name}: update ${BASE_VERSION} -> 0.2.0: committed ${Date.now() - t0} ms after the command (archive ${r.manifest.archive.size} bytes)`,
      );
      assert.match(s.outcome ?? "", /0\.2\.0 committed/);
      assert.ok(
        device.exits.some((e) => e.code === 75),
        "the agent exited 75 to be restarted",
      );
    });

    itFull("refuses a tampered manifest, a downgrade and an archive over the bound, with nothing changed", async () => {
      const good = releases.get("0.2.0")!;
      const tampered = structuredClone(good.signed);
      tampered.payload.version = "9.9.9";
      const cases: Array<[string, unknown]> = [
        ["update_untrusted", tampered],
        ["update_not_newer", good.signed],
        ["update_not_newer", signRelease({ ...good.manifest, version: "0.1.9" }, ca)],
        [
          "update_too_large",
          signRelease(
            { ...good.manifest, version: "0.5.0", archive: { ...good.manifest.archive, size: 40 * 1024 * 1024 } },
            ca,
          ),
        ],
      ];
      for (const [code, doc] of cases) {
        const a = await submit(doc, urls.get("0.2.0")!);
        assert.equal(a.status, "failed", `${code}: ${JSON.stringify(a)}`);
        assert.match(a.text, new RegExp(code), `${code}: ${JSON.stringify(a)}`);
      }
      const s = await status();
      assert.equal(s?.running, "0.2.0");
      assert.equal(s?.state, "committed");
    });

    itFull("a wrong hash is found after the download: refused, nothing changed", async () => {
      const good = releases.get("0.2.0")!;
      const lie: ReleaseManifest = {
        ...good.manifest,
        version: "0.2.1",
        archive: { ...good.manifest.archive, sha256: "a".repeat(64) },
      };
      const a = await submit(signRelease(lie, ca), urls.get("0.2.0")!);
      assert.equal(a.status, "completed", JSON.stringify(a));
      const { status: s } = await waitStatus("the hash refusal reported", (s) =>
        /update_hash_mismatch/.test(s.lastFailure ?? ""),
      );
      assert.equal(s.running, "0.2.0");
      assert.equal(s.state, "committed");
      assert.equal(s.job, "nothing");
    });

    it("0.3.0 crashes at every start: rolled back to 0.2.0 by the boot guard after maxStarts", async () => {
      const r = await release(
        "0.3.0",
        (real) =>
          `if (process.argv.includes("run")) throw new Error("0.3.0 crashes at start");\nmodule.exports = require(${JSON.stringify(real)});\n`,
      );
      const startsBefore = device.starts;
      const t0 = Date.now();
      assert.equal((await submit(r.signed, urls.get("0.3.0")!)).status, "completed");
      const { status: s } = await waitStatus(
        "rolled back from 0.3.0",
        (s) => s.running === "0.2.0" && s.state === "rolled-back",
      );
      console.log(
        `# ${kind.name}: crashing 0.3.0: back on 0.2.0 ${Date.now() - t0} ms after the command (${device.starts - startsBefore} starts)`,
      );
      assert.match(
        s.outcome ?? "",
        new RegExp(`0\\.3\\.0 failed: ${MAX_STARTS} starts without passing the health check`),
      );
      assert.ok(device.exits.filter((e) => e.code === 1).length >= MAX_STARTS, "it did crash");
      // The status item says so too, for inventories and any subscriber (docs/protocol.md).
      const update = await waitStatusItemUpdate((u) => u.attrs.failed === "0.3.0");
      assert.equal(update.attrs.state, "rolled-back");
      assert.equal(update.attrs.version, "0.2.0");
      assert.match(String(update.attrs.reason), /starts without passing the health check/);
    });

    itFull("0.3.1 never gets online: rolled back after the health deadline", async () => {
      const r = await release(
        "0.3.1",
        (real) => `process.env.AGENT_SERVER = "127.0.0.1:9";\nmodule.exports = require(${JSON.stringify(real)});\n`,
      );
      const t0 = Date.now();
      assert.equal((await submit(r.signed, urls.get("0.3.1")!)).status, "completed");
      const { status: s } = await waitStatus(
        "rolled back from 0.3.1",
        (s) => s.running === "0.2.0" && /0\.3\.1 failed/.test(s.outcome ?? ""),
      );
      console.log(
        `# unhealthy 0.3.1: back on 0.2.0 ${Date.now() - t0} ms after the command (deadline ${HEALTH_DEADLINE_MS} ms)`,
      );
      assert.match(s.outcome ?? "", /health check: not online within/);
    });

    itFull(
      "SIGKILL during the download, at the first start and during the trial: a known release runs each time",
      async () => {
        const readState = () => {
          try {
            return JSON.parse(readFileSync(join(stateDir, "update-state.json"), "utf8")) as {
              phase: string;
              starts?: number;
            };
          } catch {
            return undefined;
          }
        };
        const until = async (what: string, cond: () => boolean, ms = 60_000) => {
          const t0 = Date.now();
          while (!cond()) {
            if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms\n${device.tail()}`);
            await new Promise((r) => setTimeout(r, 10));
          }
        };
        const r4 = await release("0.4.0");

        // 1. During the download: the archive from a source slow enough to be caught in the act.
        const slow = await slowHttp(readFileSync(r4.archiveFile), 256 * 1024);
        try {
          assert.equal((await submit(r4.signed, slow.url)).status, "completed");
          await until(
            "the download under way",
            () =>
              existsSync(join(stateDir, "downloads")) &&
              readdirSync(join(stateDir, "downloads")).some((f) => f.endsWith(".partial")),
          );
          device.kill();
        } finally {
          slow.close();
        }
        const afterDownload = await waitStatus("back after the kill in the download", (s) => s.running === "0.2.0");
        assert.notEqual(afterDownload.status.state, "trial", "nothing was switched");
        assert.equal(readlinkSync(join(stateDir, "current")), join("releases", "0.2.0"));

        // 2. At the first start of the new release: killed as soon as it is spawned.
        const startsBefore = device.starts;
        device.killNextStart();
        assert.equal((await submit(r4.signed, urls.get("0.4.0")!)).status, "completed");
        await until("the first start killed", () => device.starts >= startsBefore + 2, 90_000);
        await waitStatus(
          "0.4.0 committed after the killed first start",
          (s) => s.running === "0.4.0" && s.state === "committed",
        );

        // 3. During the health check: killed while update-state.json says the trial is on.
        const r5 = await release("0.4.1");
        assert.equal((await submit(r5.signed, urls.get("0.4.1")!)).status, "completed");
        await until("0.4.1 on trial", () => {
          const st = readState();
          return st?.phase === "trial" && (st.starts ?? 0) >= 1;
        });
        device.kill();
        const { status: s } = await waitStatus(
          "0.4.1 committed after the kill in its trial",
          (s) => s.running === "0.4.1" && s.state === "committed",
        );
        assert.match(s.outcome ?? "", /0\.4\.1 committed/);
      },
    );

    itFull("iot-fleet update: uploads 0.5.0 to the share and reports the device updated", async () => {
      const r = await buildRelease({ sourceDir: tree("0.5.0"), outDir: join(dir.path, "fleet-releases"), ca });
      const out: string[] = [];
      const err: string[] = [];
      const t0 = Date.now();
      const code = await fleetMain(
        ["update", "--device", DEVICE, "--release", r.manifestFile, "--share", xmpp.share, "--json"],
        {
          out: (l) => out.push(l),
          err: (l) => err.push(l),
          env: {
            IOT_FLEET_HOME: home,
            IOT_FLEET_ADMIN_JID: "admin@iot.test",
            IOT_FLEET_ADMIN_PASSWORD_FILE: join(dir.path, "admin.pw"),
            IOT_FLEET_SERVER: `127.0.0.1:${xmpp.port}`,
            IOT_FLEET_SERVER_CA_FILE: xmpp.caFile,
          },
        },
      );
      console.log(`# ${kind.name}: iot-fleet update to 0.5.0 (upload + job) took ${Date.now() - t0} ms`);
      assert.equal(code, 0, `${err.join("\n")}\n${out.join("\n")}`);
      const job = JSON.parse(out.join("\n"));
      assert.equal(job.devices[0].status, "completed");
      assert.match(job.devices[0].note, /updated to 0\.5\.0/);
      const s = await status();
      assert.equal(s?.running, "0.5.0");
      assert.equal(s?.state, "committed");
    });
  });
