/**
 * iot-sim fleet: N simulated devices in this process against a real XMPP server, each the whole
 * agent on its own simulated board, with a report every few seconds (online, readings published
 * and spooled, memory per device) and, with --collect, a subscriber that counts every reading by
 * sequence number (lost, duplicated, latency). docs/fleet-sim.md.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { describeError } from "../kernel/errors.js";
import { createLogger, type LogLevel } from "../kernel/log.js";
import type { XmppSession } from "../xmpp/session.js";
import { createAccountsAsAdmin } from "./accounts.js";
import { openClientSession } from "./client-session.js";
import { type CollectorReport, TelemetryCollector } from "./collector.js";
import { FLEET_TEMPLATE_DEFAULTS } from "./device-config.js";
import { Fleet, type FleetStats } from "./fleet.js";

export const USAGE = `Usage: iot-sim fleet --devices N --server HOST:PORT --domain DOMAIN --ca FILE [options]

Runs N simulated devices in this process, each the whole agent (XMPP session with stream
management, telemetry spool and publisher, ad-hoc commands) on its own simulated board with two
sensors, publishing one item per round of readings to the server's pubsub service.

Required:
  --devices N            how many devices
  --server HOST:PORT     the XMPP server (or a proxy in front of it); repeat it for the nodes of
                         a cluster: each device spreads and fails over like xmpp.servers
  --domain DOMAIN        the accounts' domain: devices are <prefix>0001@DOMAIN, ...
  --ca FILE              the CA (PEM) that signed the server's certificate

Options:
  --prefix P             device id prefix (default dev-)
  --password-env VAR     environment variable holding the devices' password (default
                         FLEET_DEVICE_PASSWORD); every simulated device uses the same one
  --interval-ms MS       how often each device reads its sensors and publishes (default 5000)
  --operator JID         an operator account (repeatable; default operator@DOMAIN)
  --pubsub JID           the pubsub service (default pubsub.DOMAIN)
  --spool file|memory    the devices' spool (default file, fsync every second)
  --start-rate N         logins started per second at most (default 50)
  --data DIR             where the devices' state goes (default: a temporary directory, removed at exit)
  --duration S           stop after S seconds (default: run until Ctrl-C)
  --report-every S       print a report line every S seconds (default 10)
  --no-jitter            reconnect waits without jitter (to measure a reconnect storm; never on devices)
  --create-accounts      create the device accounts first, through the server's admin commands
                         (XEP-0133); needs --admin and the admin's password in ADMIN_PASSWORD
  --admin JID            the server admin account for --create-accounts
  --collect              subscribe to every device's telemetry as the first --operator (password in
                         OPERATOR_PASSWORD) and report lost and duplicated readings and latency
  --json                 print the final report as JSON
  --log-level L          debug | info | warn | error (default warn; JSON lines on stderr)
  -h, --help             show this help
`;

export interface FleetCliIo {
  out: (line: string) => void;
  err: (line: string) => void;
  env?: NodeJS.ProcessEnv;
  untilStopped?: Promise<void>;
}

const mib = (bytes: number) => bytes / (1024 * 1024);

function reportLine(t0: number, s: FleetStats, baseRss: number): string {
  const m = process.memoryUsage();
  const perDevice = s.devices > 0 ? mib(m.rss - baseRss) / s.devices : 0;
  return [
    `t=${Math.round((Date.now() - t0) / 1000)}s`,
    `online ${s.online}/${s.devices}`,
    `published ${s.publishedReadings} readings in ${s.publishedItems} items`,
    `spooled ${s.spooledReadings}`,
    `resumed ${s.resumes}, connects ${s.connects}, disconnects ${s.disconnects}`,
    `RSS ${mib(m.rss).toFixed(0)} MiB (${perDevice.toFixed(2)} MiB/device), heap ${mib(m.heapUsed).toFixed(0)} MiB`,
  ].join(", ");
}

export async function main(argv: string[], io: FleetCliIo): Promise<number> {
  const env = io.env ?? process.env;
  let values: Record<string, string | boolean | string[] | undefined>;
  try {
    const parsed = parseArgs({
      args: argv[0] === "fleet" ? argv.slice(1) : argv,
      allowPositionals: false,
      options: {
        devices: { type: "string" },
        server: { type: "string", multiple: true },
        domain: { type: "string" },
        ca: { type: "string" },
        prefix: { type: "string" },
        "password-env": { type: "string" },
        "interval-ms": { type: "string" },
        operator: { type: "string", multiple: true },
        pubsub: { type: "string" },
        spool: { type: "string" },
        "start-rate": { type: "string" },
        data: { type: "string" },
        duration: { type: "string" },
        "report-every": { type: "string" },
        "no-jitter": { type: "boolean" },
        "create-accounts": { type: "boolean" },
        admin: { type: "string" },
        collect: { type: "boolean" },
        json: { type: "boolean" },
        "log-level": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
    values = parsed.values;
  } catch (err) {
    io.err(`iot-sim fleet: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    io.out(USAGE);
    return 0;
  }
  const usage = (msg: string) => {
    io.err(`iot-sim fleet: ${msg}`);
    return 2;
  };
  const int = (key: string, def: number | undefined, min: number, max: number): number | undefined => {
    const v = values[key];
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new RangeError(`--${key} must be a whole number ${min}..${max}`);
    return n;
  };
  let devices: number;
  let intervalMs: number;
  let startRate: number;
  let duration: number | undefined;
  let reportEvery: number;
  try {
    devices = int("devices", undefined, 1, 100_000) ?? Number.NaN;
    intervalMs = int("interval-ms", 5000, 100, 3_600_000)!;
    startRate = int("start-rate", 50, 1, 10_000)!;
    duration = int("duration", undefined, 1, 30 * 24 * 3600);
    reportEvery = int("report-every", 10, 1, 3600)!;
  } catch (err) {
    return usage((err as Error).message);
  }
  for (const key of ["domain", "ca"]) if (typeof values[key] !== "string") return usage(`--${key} is required`);
  const servers = (values.server as string[] | undefined) ?? [];
  if (servers.length === 0) return usage("--server is required");
  if (Number.isNaN(devices)) return usage("--devices is required");
  const spool = (values.spool as string | undefined) ?? "file";
  if (spool !== "file" && spool !== "memory") return usage("--spool must be file or memory");
  const level = ((values["log-level"] as string | undefined) ?? "warn") as LogLevel;
  if (!["debug", "info", "warn", "error"].includes(level))
    return usage("--log-level must be debug, info, warn or error");
  const passwordVar = (values["password-env"] as string | undefined) ?? "FLEET_DEVICE_PASSWORD";
  const password = env[passwordVar];
  if (!password) return usage(`the devices' password is not set: put it in ${passwordVar}`);
  const domain = values.domain as string;
  // Helpers (accounts, collector) use the first node: accounts and subscriptions are cluster-wide.
  const server = servers[0]!;
  const caFile = resolve(values.ca as string);
  try {
    readFileSync(caFile);
  } catch (err) {
    return usage(`--ca ${caFile}: ${(err as Error).message}`);
  }
  const operators = (values.operator as string[] | undefined) ?? [`operator@${domain}`];
  const log = createLogger({ level, write: (l) => io.err(l.trimEnd()) }, { component: "iot-sim-fleet" });
  const ownData = values.data === undefined;
  const dataRoot = ownData ? mkdtempSync(join(tmpdir(), "iot-fleet-sim-")) : resolve(values.data as string);

  const fleet = new Fleet({
    template: {
      ...FLEET_TEMPLATE_DEFAULTS,
      servers,
      domain,
      caFile,
      operators,
      intervalMs,
      spool,
      ...(values.pubsub ? { pubsubService: values.pubsub as string } : {}),
    },
    devices,
    idPrefix: (values.prefix as string | undefined) ?? "dev-",
    dataRoot,
    password: () => password,
    startPerSecond: startRate,
    log,
    ...(values["no-jitter"] ? { random: () => 1 } : {}),
  });
  const ids = fleet.ids();
  let collectorSession: XmppSession | undefined;
  let collector: TelemetryCollector | undefined;
  let stopped = false;
  const untilStopped = io.untilStopped?.then(() => {
    stopped = true;
  });
  try {
    if (values["create-accounts"]) {
      const admin = values.admin as string | undefined;
      const adminPassword = env.ADMIN_PASSWORD;
      if (!admin || !adminPassword) return usage("--create-accounts needs --admin JID and ADMIN_PASSWORD");
      const t = Date.now();
      const r = await createAccountsAsAdmin(
        { jid: admin, password: adminPassword, server, caFile, log },
        { jids: ids.map((id) => `${id}@${domain}`), password: () => password },
      );
      io.out(
        `accounts: ${r.created} created, ${r.existing} already there, in ${((Date.now() - t) / 1000).toFixed(1)} s`,
      );
    }
    if (values.collect) {
      const operatorPassword = env.OPERATOR_PASSWORD;
      if (!operatorPassword) return usage("--collect needs the first --operator's password in OPERATOR_PASSWORD");
      collectorSession = await openClientSession({
        jid: operators[0]!,
        password: operatorPassword,
        server,
        caFile,
        log,
      });
      collector = new TelemetryCollector({
        session: collectorSession,
        service: (values.pubsub as string | undefined) ?? `pubsub.${domain}`,
        log,
      });
    }
    const baseRss = process.memoryUsage().rss;
    const t0 = Date.now();
    io.out(`starting ${devices} devices at ${startRate}/s against ${servers.join(", ")} (state in ${dataRoot})`);
    const timer = setInterval(() => io.out(reportLine(t0, fleet.stats(), baseRss)), reportEvery * 1000);
    try {
      await Promise.race([fleet.start(), untilStopped]);
      if (collector && !stopped) {
        await Promise.race([fleet.waitOnline(120_000), untilStopped]);
        await collector.subscribe(ids, { timeoutMs: 120_000 });
        io.out(`collector subscribed to ${ids.length} telemetry nodes`);
      }
      const done =
        duration === undefined
          ? new Promise<void>(() => {})
          : new Promise<void>((r) => setTimeout(r, duration! * 1000));
      await Promise.race([done, untilStopped ?? done]);
    } finally {
      clearInterval(timer);
    }
    const final = fleet.stats();
    io.out(reportLine(t0, final, baseRss));
    await fleet.stop();
    let report: CollectorReport | undefined;
    if (collector) {
      // What arrived while we were stopping, then what the nodes still hold.
      await collector.settled();
      await collector.fetchItems(ids);
      report = collector.report();
    }
    if (values.json) io.out(JSON.stringify({ fleet: final, collector: report }));
    else if (report)
      io.out(
        `collector: ${report.readings} readings from ${report.reporting}/${report.devices} devices, ` +
          `${report.missing} missing${report.missing ? ` (e.g. ${report.missingExamples.join(", ")})` : ""}, ` +
          `${report.duplicates} duplicated, latency p50 ${report.latencyMs.p50.toFixed(0)} ms p99 ${report.latencyMs.p99.toFixed(0)} ms`,
      );
    return report && (report.missing > 0 || report.duplicates > 0) ? 1 : 0;
  } catch (err) {
    io.err(`iot-sim fleet: ${(err as Error).message}`);
    io.err(JSON.stringify(describeError(err)));
    await fleet.stop().catch((stopErr: unknown) => io.err(`iot-sim fleet: ${(stopErr as Error).message}`));
    return 1;
  } finally {
    collector?.close();
    await collectorSession?.stop();
    if (ownData) rmSync(dataRoot, { recursive: true, force: true });
  }
}
