/**
 * The agent configurations of the memory benchmark, each a step on the one before, shaped like
 * examples/sim.yaml (same xmpp keepalive, pubsub, batch and publish settings; docs/configuration.md):
 *
 *   xmpp      XMPP only: session, commands, telemetry with no channel (no hardware, no readings)
 *   serial    + the simulated MCU on a PTY (`iot-sim`, real serialport driver): one channel read
 *               every 1000 ms (the "1 reading/s"), two serial actuators
 *   gpio      + simulated GPIO (`hardware.gpio: sim`): an output, an input and its channel
 *   mqtt      + the MQTT bus (harness mosquitto, simulated Zigbee2MQTT sensor and plug): a channel
 *               every 10 s and an output. This is examples/sim.yaml's set of backends.
 *   mirror    + the MQTT mirror (every reading also to mosquitto, QoS 2, with its own file spool)
 *   load      + the file spool under load: the burst channels below sampled from the start
 *
 * Every configuration with a serial link also has BURST_CHANNELS extra channels on the MCU, idle
 * (interval 0 = edges only, and serial channels have no edges) until the benchmark raises them with
 * the set-sampling command for the replay and growth phases. Idle, they are a few objects each.
 * The link's maxInFlight is raised to match (BURST_CHANNELS + 8; default 8).
 * Deviations from examples/sim.yaml, none of them about memory: reconnect.maxDelayMs 1000 (so a
 * restored link is used within a second and the replay starts near the intended spool depth), telemetry.sampler.minIntervalMs 10 (so the burst channels
 * may run at 10 ms), channels humidity/co2 left out (one reading per second).
 */

export type VariantId = "xmpp" | "serial" | "gpio" | "mqtt" | "mirror" | "load";

export interface Variant {
  id: VariantId;
  title: string;
  /** What this step adds to the one before (for the marginal-cost column). */
  adds: string;
  serial: boolean;
  gpio: boolean;
  mqttBus: boolean;
  mirror: boolean;
  /** Burst channels sampled from the start at this total rate (readings/s); 0 = idle. */
  loadRate: number;
}

export const BURST_CHANNELS = 16;
const SENSORS = ["temperature", "humidity", "co2"] as const;
const UNITS: Record<(typeof SENSORS)[number], string> = { temperature: '"°C"', humidity: '"%"', co2: "ppm" };

export function variants(loadRate: number): Variant[] {
  const base = { serial: false, gpio: false, mqttBus: false, mirror: false, loadRate: 0 };
  return [
    { ...base, id: "xmpp", title: "XMPP only", adds: "session, commands, telemetry (no channel)" },
    { ...base, id: "serial", title: "+ serial", adds: "serialport on a PTY, 1 channel at 1 s", serial: true },
    { ...base, id: "gpio", title: "+ GPIO", adds: "simulated GPIO (firmware-sim loaded)", serial: true, gpio: true },
    {
      ...base,
      id: "mqtt",
      title: "+ MQTT bus (sim.yaml)",
      adds: "MQTT connection, discovery, 1 channel, 1 output",
      serial: true,
      gpio: true,
      mqttBus: true,
    },
    {
      ...base,
      id: "mirror",
      title: "+ MQTT mirror",
      adds: "mirror: 2nd MQTT client, QoS 2, own spool",
      serial: true,
      gpio: true,
      mqttBus: true,
      mirror: true,
    },
    {
      ...base,
      id: "load",
      title: `+ file spool under load`,
      adds: `${loadRate} readings/s through the file spool`,
      serial: true,
      gpio: true,
      mqttBus: true,
      mirror: true,
      loadRate,
    },
  ];
}

export function burstChannelIds(v: Variant): string[] {
  return v.serial ? Array.from({ length: BURST_CHANNELS }, (_, i) => `burst${i}`) : [];
}

/** Interval per burst channel (ms) for a total rate over all of them, at least minMs. */
export function intervalForRate(rate: number, minMs = 10): number {
  return Math.max(minMs, Math.round((BURST_CHANNELS * 1000) / rate));
}

export interface ConfigParams {
  deviceId: string;
  domain: string;
  dataDir: string;
  /** host:port the agent connects to (the link-breaking proxy in front of Prosody). */
  server: string;
  caFile: string;
  operator: string;
  /** PTY path of the simulated MCU (variants with serial). */
  ptyPath?: string;
  /** mqtt://127.0.0.1:PORT of the harness mosquitto (variants with the bus or the mirror). */
  mqttUrl?: string;
}

export function agentConfig(v: Variant, p: ConfigParams): string {
  const lines = [
    "# Written by bench/memory.ts (see bench/memory/configs.ts).",
    "device:",
    `  id: ${p.deviceId}`,
    `  name: Memory bench ${v.id}`,
    `  dataDir: ${p.dataDir}`,
    "xmpp:",
    `  jid: ${p.deviceId}@${p.domain}`,
    `  server: ${p.server}`,
    `  caFile: ${p.caFile}`,
    "  keepalive:",
    "    idleMs: 30000",
    "    timeoutMs: 10000",
    "  reconnect:",
    "    initialDelayMs: 500",
    "    maxDelayMs: 1000",
    "pubsub:",
    `  service: pubsub.${p.domain}`,
    "  nodePrefix: devices/",
    "operators:",
    `  - jid: ${p.operator}`,
    "hardware:",
    `  gpio: ${v.gpio ? "sim" : "onoff"}`,
    "  serial: serialport",
  ];
  const board: string[] = [];
  if (v.mqttBus) board.push("  mqtt:", `    url: ${p.mqttUrl}`);
  if (v.serial)
    board.push(
      "  serial:",
      "    mcu0:",
      `      path: ${p.ptyPath}`,
      "      baudRate: 115200",
      // Room for every burst channel's read at once besides the 1 s channel and the actuators.
      `      maxInFlight: ${BURST_CHANNELS + 8}`,
    );
  const outputs: string[] = [];
  if (v.gpio) outputs.push("    relay: { source: gpio, line: 17 }");
  if (v.serial)
    outputs.push(
      "    fan: { source: serial, link: mcu0, actuator: fan }",
      "    heater: { source: serial, link: mcu0, actuator: heater }",
    );
  if (v.mqttBus)
    outputs.push(
      "    vent:",
      "      source: mqtt",
      "      mqtt:",
      "        commandTopic: zigbee2mqtt/vent_plug/set",
      `        payloadOn: '{"state":"ON"}'`,
      `        payloadOff: '{"state":"OFF"}'`,
      "        stateTopic: zigbee2mqtt/vent_plug",
      "        stateJsonPath: state",
      "        confirmTimeoutMs: 3000",
    );
  if (outputs.length > 0) board.push("  outputs:", ...outputs);
  if (v.gpio) board.push("  inputs:", "    door: { line: 27, debounceMs: 20 }");
  const channels: string[] = [];
  if (v.serial)
    channels.push(
      '    temperature: { source: serial, link: mcu0, sensor: temperature, kind: temperature, unit: "°C", intervalMs: 1000 }',
    );
  if (v.gpio) channels.push("    door-contact: { source: gpio, input: door, kind: contact }");
  if (v.mqttBus)
    channels.push(
      "    outside-temp: { source: mqtt, kind: temperature, intervalMs: 10000, mqtt: { topic: zigbee2mqtt/outside_sensor } }",
    );
  burstChannelIds(v).forEach((id, i) => {
    const sensor = SENSORS[i % SENSORS.length]!;
    channels.push(
      `    ${id}: { source: serial, link: mcu0, sensor: ${sensor}, kind: ${sensor}, unit: ${UNITS[sensor]}, intervalMs: 1000 }`,
    );
  });
  if (channels.length > 0) board.push("  channels:", ...channels);
  if (board.length > 0) lines.push("board:", ...board);
  const burst = burstChannelIds(v);
  const burstInterval = v.loadRate > 0 ? intervalForRate(v.loadRate) : 0;
  lines.push(
    "telemetry:",
    "  sampler:",
    "    minIntervalMs: 10",
    ...(burst.length > 0 ? ["    intervals:", ...burst.map((id) => `      ${id}: ${burstInterval}`)] : []),
    "  batch:",
    "    maxReadings: 20",
    "    maxAgeMs: 2000",
    "  publish:",
    "    maxItems: 20",
  );
  if (v.mirror) lines.push("mqttMirror:", "  enabled: true", "  broker:", `    url: ${p.mqttUrl}`);
  lines.push("log:", "  level: info", "");
  return lines.join("\n");
}
