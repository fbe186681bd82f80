/**
 * The telemetry step of the composition root: the TelemetryService over the board's channels, its
 * optional MQTT mirror (docs/mqtt.md), and the persisted per-channel sampling settings the
 * set-sampling command changes. Nothing when `telemetry.enabled` is false.
 */
import { join } from "node:path";
import type { Board } from "../../drivers/board.js";
import type { Logger } from "../../kernel/log.js";
import type { Timers } from "../../kernel/timers.js";
import type { XmppSession } from "../../xmpp/session.js";
import type { AgentConfig } from "../config/schema.js";
import { boardChannelSource } from "../telemetry/board-source.js";
import { MqttMirror, mirrorTopics } from "../telemetry/mqtt-mirror.js";
import { SamplingSettings } from "../telemetry/sampling-settings.js";
import { TelemetryService } from "../telemetry/service.js";
import { updateOutcomeOf } from "../update/state.js";
import { AGENT_VERSION } from "../version.js";

export interface TelemetryParts {
  telemetry: TelemetryService | undefined;
  sampling: SamplingSettings | undefined;
}

export interface TelemetryDeps {
  session: XmppSession;
  board: Board;
  firmwareVersion: () => string | undefined;
  timers: Timers;
  log: Logger;
  /** The agent's memory, for the status item (MemoryWatch.usage()). */
  memory?: () => { rssBytes: number; heapUsedBytes: number };
}

export async function composeTelemetry(config: AgentConfig, deps: TelemetryDeps): Promise<TelemetryParts> {
  if (!config.telemetry.enabled) return { telemetry: undefined, sampling: undefined };
  const { session, board, timers, log } = deps;
  const dataDir = join(config.device.dataDir, "telemetry");
  const mirror = await composeMirror(config, dataDir, timers, log);
  const telemetry = new TelemetryService({
    config: config.telemetry,
    pubsub: config.pubsub,
    // Operators' accounts read the telemetry nodes (whitelist members, docs/protocol.md).
    operators: config.operators.map((o) => o.jid),
    deviceId: config.device.id,
    dataDir,
    session,
    source: boardChannelSource(board, { inputIntervalMs: config.telemetry.sampler.inputIntervalMs }),
    agentVersion: AGENT_VERSION,
    firmwareVersion: deps.firmwareVersion,
    timers,
    logger: log,
    ...(mirror ? { mirror } : {}),
    ...(deps.memory ? { memory: deps.memory } : {}),
    ...(config.update.enabled ? { updateOutcome: () => updateOutcomeOf(config.update.dir) } : {}),
    onStateChange: (state) => {
      log.info("telemetry state", { state });
      session.refreshPresence();
    },
  });
  const sampling = new SamplingSettings({
    path: join(config.device.dataDir, "sampling.json"),
    defaults: samplingDefaults(config),
    target: telemetry,
    minIntervalMs: config.telemetry.sampler.minIntervalMs,
    maxIntervalMs: config.telemetry.sampler.maxIntervalMs,
    logger: log,
  });
  return { telemetry, sampling };
}

/** The configured interval of every channel and input: what holds until set-sampling overrides it. */
export function samplingDefaults(config: AgentConfig): Record<string, number> {
  return Object.fromEntries([
    ...Object.entries(config.board.channels).map(([id, c]) => [id, c.intervalMs]),
    ...Object.keys(config.board.inputs).map((id) => [id, config.telemetry.sampler.inputIntervalMs]),
  ]);
}

/**
 * Optional second uplink: the same readings to an MQTT broker, from its own spool (docs/mqtt.md).
 * MQTT.js is imported only when the mirror is on (or the board has MQTT devices): see hardware.ts.
 */
async function composeMirror(
  config: AgentConfig,
  dataDir: string,
  timers: Timers,
  log: Logger,
): Promise<MqttMirror | undefined> {
  const m = config.mqttMirror;
  if (!m.enabled || !m.broker) return undefined;
  const { MqttConnection } = await import("../../drivers/mqtt/connection.js");
  const topics = mirrorTopics(m.topicPrefix, config.device.id);
  return new MqttMirror({
    config: m,
    deviceId: config.device.id,
    port: new MqttConnection({
      config: m.broker,
      clientId: `${config.device.id}-mirror`,
      // Exactly once across broker outages: the QoS 2 flows survive reconnects (docs/mqtt.md).
      persistentSession: { expiryS: m.sessionExpiryS },
      will: { topic: topics.availability, payload: "offline", retain: true, qos: 1 },
      birth: { topic: topics.availability, payload: "online", retain: true, qos: 1 },
      timers,
      logger: log,
    }),
    dataDir,
    fileSpool: config.telemetry.spool,
    timers,
    logger: log,
  });
}
