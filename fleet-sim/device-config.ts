/**
 * The config of one simulated device of a fleet: the same YAML an `iot-agent` on a Pi reads, with
 * the simulator standing in for the hardware (an in-process MCU on a simulated serial port, two
 * sensors). Every device of a fleet gets its own id, account, data directory and therefore its own
 * spool and sequence numbers; the rest comes from one template.
 */
import { join } from "node:path";

export interface FleetTemplate {
  /** host:port of the XMPP server (or of a proxy in front of it); several: a cluster's nodes (xmpp.servers). */
  servers: string[];
  domain: string;
  caFile: string;
  /** The pubsub service; null publishes to each device's PEP service. Default pubsub.<domain>. */
  pubsubService?: string | null;
  /** Bare JIDs allowed to run commands; they are also the telemetry nodes' readers. */
  operators: string[];
  /** Each sensor is read this often; the batcher publishes what one round read as one item. */
  intervalMs: number;
  /** Spool: file (as on a device: survives a crash) or memory (cheaper, for very large fleets). */
  spool: "file" | "memory";
  /** The file spool's fsync: always (a device's default), interval or never. */
  fsync: "always" | "interval" | "never";
  reconnect: { initialDelayMs: number; maxDelayMs: number };
  keepalive: { idleMs: number; timeoutMs: number };
  /** Stream-management resumption lifetime asked for (the server's max wins). */
  resumeMaxSeconds: number;
  /**
   * Items each telemetry node keeps (telemetry.publish.maxItems, the agent's default 32). A
   * server's cost per publish can grow with what the node holds (Prosody's file storage rewrites
   * the node's whole item list on every publish): a steady state is reached once nodes are full.
   */
  maxItems: number;
  logLevel: "debug" | "info" | "warn" | "error";
}

/** Readings per round (the two channels below): one round is one pubsub item. */
export const FLEET_READINGS_PER_ROUND = 2;

export const FLEET_TEMPLATE_DEFAULTS: Omit<FleetTemplate, "servers" | "domain" | "caFile" | "operators"> = {
  intervalMs: 5000,
  spool: "file",
  fsync: "interval",
  reconnect: { initialDelayMs: 1000, maxDelayMs: 60_000 },
  keepalive: { idleMs: 60_000, timeoutMs: 20_000 },
  resumeMaxSeconds: 300,
  maxItems: 32,
  logLevel: "warn",
};

/** `dev-0001`: ids sort in creation order and have the same length (equal stanza sizes). */
export function fleetDeviceId(prefix: string, index: number, count: number): string {
  return `${prefix}${String(index + 1).padStart(Math.max(4, String(count).length), "0")}`;
}

const y = (s: string): string => JSON.stringify(s); // a JSON string is a valid YAML scalar

/** The YAML of device `id`, its state under `<dataRoot>/<id>`. */
export function renderDeviceConfig(t: FleetTemplate, id: string, dataRoot: string): string {
  const service = t.pubsubService === undefined ? `pubsub.${t.domain}` : t.pubsubService;
  const interval = t.intervalMs;
  return [
    "device:",
    `  id: ${y(id)}`,
    `  dataDir: ${y(join(dataRoot, id))}`,
    "xmpp:",
    `  jid: ${y(`${id}@${t.domain}`)}`,
    ...(t.servers.length === 1
      ? [`  server: ${y(t.servers[0]!)}`]
      : ["  servers:", ...t.servers.map((s) => `    - ${y(s)}`)]),
    `  caFile: ${y(t.caFile)}`,
    `  reconnect: { initialDelayMs: ${t.reconnect.initialDelayMs}, maxDelayMs: ${t.reconnect.maxDelayMs} }`,
    `  keepalive: { idleMs: ${t.keepalive.idleMs}, timeoutMs: ${t.keepalive.timeoutMs} }`,
    `  streamManagement: { resumeMaxSeconds: ${t.resumeMaxSeconds} }`,
    "pubsub:",
    ...(service ? [`  service: ${y(service)}`] : []),
    "  nodePrefix: devices/",
    "operators:",
    ...t.operators.map((jid) => `  - jid: ${y(jid)}`),
    "hardware: { gpio: sim, serial: sim }",
    "board:",
    "  serial:",
    "    mcu0: { path: /dev/ttySIM0 }",
    "  channels:",
    `    temperature: { source: serial, link: mcu0, sensor: temperature, kind: temperature, unit: "°C", intervalMs: ${interval} }`,
    `    humidity: { source: serial, link: mcu0, sensor: humidity, kind: humidity, unit: "%", intervalMs: ${interval} }`,
    "telemetry:",
    // Both channels are read in the same round: one item per round, whatever the interval.
    `  batch: { maxReadings: 50, maxAgeMs: ${Math.max(100, Math.min(1000, Math.floor(interval / 2)))} }`,
    `  spool: { store: ${t.spool}, fsync: ${t.fsync} }`,
    `  publish: { maxItems: ${t.maxItems} }`,
    // The fleet's process is one, not N: the per-device memory watch would read the same RSS N times.
    "memory: { checkIntervalMs: 3600000 }",
    `log: { level: ${t.logLevel} }`,
    "",
  ].join("\n");
}
