/**
 * Composition root: the only place that knows the session, the hardware, telemetry and commands
 * together. Each room gets what it needs as typed dependencies; this file wires them in a fixed
 * order (start top to bottom, stop bottom to top):
 *
 *   1. state directory
 *   2. hardware backends (real or simulated, from `hardware`) and the Board
 *   3. the XMPP session (not started yet: it needs the presence payload from telemetry)
 *   4. telemetry: spool -> publisher -> sampler (drains what a crash left as soon as online)
 *   5. commands: authoriser, audit log, registry (built-ins + credential rotation), XEP-0050
 *   6. presence subscription policy (operators only)
 *   7. session.start()
 */
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { Board, type BoardBackends } from "../drivers/board.js";
import { boardUsesGpio } from "../drivers/config.js";
import { OnoffGpioBackend, onoffAvailability } from "../drivers/gpio/onoff-backend.js";
import { MqttConnection } from "../drivers/mqtt/connection.js";
import { SerialportBackend } from "../drivers/serial/serialport-backend.js";
import { createSimBoard, type SimBoard } from "../firmware-sim/backends.js";
import { deviceCredentialsFor } from "../provisioning/device/agent-credentials.js";
import { AdhocCommands, COMMAND_FEATURES } from "./commands/adhoc.js";
import { AuditLog, AuditRouter } from "./commands/audit.js";
import { RefusalThrottle } from "./commands/audit-refusals.js";
import { Authorizer } from "./commands/authorize.js";
import { registerBuiltins } from "./commands/builtin/index.js";
import { hardwareStatusOf, portsFromBoard } from "./commands/hal-adapter.js";
import type { StatusSnapshot, StatusSource } from "./commands/ports.js";
import { SubscriptionPolicy } from "./commands/presence.js";
import { CommandRegistry } from "./commands/registry.js";
import type { LoadedConfig } from "./config/load.js";
import type { AgentConfig } from "./config/schema.js";
import { ConfigError, describeError } from "../kernel/errors.js";
import { createLogger, type Logger } from "../kernel/log.js";
import { realTimers, type Timers } from "../kernel/timers.js";
import { boardChannelSource } from "./telemetry/board-source.js";
import { MqttMirror, mirrorTopics } from "./telemetry/mqtt-mirror.js";
import { SamplingSettings } from "./telemetry/sampling-settings.js";
import { TelemetryService } from "./telemetry/service.js";
import { AGENT_NAME, AGENT_VERSION } from "./version.js";
import { XmppSession } from "../xmpp/session.js";

export interface Agent {
  readonly session: XmppSession;
  readonly board: Board;
  readonly telemetry: TelemetryService | undefined;
  readonly commands: AdhocCommands;
  /** The simulated board when `hardware` selects the simulator (tests and the demo drive it). */
  readonly sim: SimBoard | undefined;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface AgentDeps {
  log?: Logger;
  timers?: Timers;
  /** Replaces the backends chosen by `hardware` (tests). */
  backends?: BoardBackends;
}

/**
 * A board wired to real GPIO on an install where onoff was skipped (no compiler at `npm ci`) can
 * never start: say so as a config-level error (exit 3, no restart loop) with the fix, instead of
 * failing at the first pin. A broken build (e.g. after a Node.js upgrade) is reported by the pin.
 */
export function gpioInstallProblem(config: AgentConfig): string | undefined {
  if (config.hardware.gpio !== "onoff" || !boardUsesGpio(config.board)) return undefined;
  const onoff = onoffAvailability();
  return onoff.state === "not-installed"
    ? `hardware.gpio is onoff and the board uses GPIO, but ${onoff.reason}`
    : undefined;
}

function chooseBackends(config: AgentConfig): { backends: BoardBackends; sim: SimBoard | undefined } {
  const { gpio, serial } = config.hardware;
  const problem = gpioInstallProblem(config);
  if (problem) throw new ConfigError("gpio_not_installed", problem, { path: "hardware.gpio" });
  const sim = gpio === "sim" || serial === "sim" ? createSimBoard(config.board) : undefined;
  return {
    sim,
    backends: {
      gpio:
        gpio === "sim"
          ? sim!.gpio
          : new OnoffGpioBackend(config.board.gpio.chip ? { defaultChip: config.board.gpio.chip } : {}),
      serial: serial === "sim" ? sim!.serial : new SerialportBackend(),
    },
  };
}

/** The first framed serial link: the microcontroller that reports the firmware version. */
function mcuLinkId(config: AgentConfig): string | undefined {
  return Object.entries(config.board.serial).find(([, l]) => l.protocol === "framed")?.[0];
}

export function createAgent(loaded: LoadedConfig, deps: AgentDeps = {}): Agent {
  const { config, password } = loaded;
  const log = deps.log ?? createLogger({ level: config.log.level }).child({ device: config.device.id });
  const timers = deps.timers ?? realTimers;
  const dataDir = config.device.dataDir;
  const started = timers.now();

  // 2. Hardware.
  const chosen = deps.backends ? { backends: deps.backends, sim: undefined } : chooseBackends(config);
  // MQTT devices always talk to a real broker (the simulator plays devices on that broker: firmware-sim/mqtt).
  const backends: BoardBackends = {
    ...chosen.backends,
    mqtt:
      chosen.backends.mqtt ??
      ((c) => new MqttConnection({ config: c, clientId: `${config.device.id}-board`, timers, logger: log })),
  };
  const board = new Board({ config: config.board, backends, timers, logger: log });
  const mcuLink = mcuLinkId(config);
  let firmwareVersion: string | undefined;
  const refreshFirmwareVersion = async () => {
    if (!mcuLink) return;
    try {
      firmwareVersion = await board.client(mcuLink).version();
    } catch (err) {
      log.debug("firmware version unavailable", { link: mcuLink, error: describeError(err) });
    }
  };

  // 3. Session. Presence carries the device status (telemetry) and caps. Who is an operator is
  // known before the session exists: it decides what strangers are told (XEP-0092).
  const authorizer = new Authorizer(config.operators);
  let telemetry: TelemetryService | undefined;
  const session = new XmppSession({
    config: config.xmpp,
    password,
    log,
    timers,
    software: { name: AGENT_NAME, version: AGENT_VERSION },
    isOperator: (jid) => authorizer.isOperator(jid),
    presenceChildren: () => telemetry?.presenceChildren() ?? [],
  });
  session.on("fault", (err) => log.error("needs attention", { error: err }));
  // Enrolled devices (password in a credential store): revocation check at start, recovery of an
  // interrupted rotation, rotate-credentials, optional self-rotation (provisioning/device/).
  const credentials = deviceCredentialsFor({
    passwordFile: config.xmpp.passwordFile,
    config: config.provisioning,
    configFile: loaded.file,
    session,
    sessionPassword: password,
    log,
    timers,
  });

  // 4. Telemetry.
  if (config.telemetry.enabled) {
    // Optional second uplink: the same readings to an MQTT broker, from its own spool (docs/mqtt.md).
    const m = config.mqttMirror;
    let mirror: MqttMirror | undefined;
    if (m.enabled && m.broker) {
      const topics = mirrorTopics(m.topicPrefix, config.device.id);
      mirror = new MqttMirror({
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
        dataDir: join(dataDir, "telemetry"),
        fileSpool: config.telemetry.spool,
        timers,
        logger: log,
      });
    }
    telemetry = new TelemetryService({
      config: config.telemetry,
      pubsub: config.pubsub,
      // Operators' accounts read the telemetry nodes (whitelist members, docs/protocol.md).
      operators: config.operators.map((o) => o.jid),
      deviceId: config.device.id,
      dataDir: join(dataDir, "telemetry"),
      session,
      source: boardChannelSource(board, { inputIntervalMs: config.telemetry.sampler.inputIntervalMs }),
      agentVersion: AGENT_VERSION,
      firmwareVersion: () => firmwareVersion,
      timers,
      logger: log,
      ...(mirror ? { mirror } : {}),
      onStateChange: (state) => {
        log.info("telemetry state", { state });
        session.refreshPresence();
      },
    });
    telemetry.publisher?.on("failure", (err) => log.warn("publish failed; readings stay in the spool", { error: err }));
  }
  const sampling = telemetry
    ? new SamplingSettings({
        path: join(dataDir, "sampling.json"),
        defaults: Object.fromEntries([
          ...Object.entries(config.board.channels).map(([id, c]) => [id, c.intervalMs]),
          ...Object.keys(config.board.inputs).map((id) => [id, config.telemetry.sampler.inputIntervalMs]),
        ]),
        target: telemetry,
        minIntervalMs: config.telemetry.sampler.minIntervalMs,
        maxIntervalMs: config.telemetry.sampler.maxIntervalMs,
        logger: log,
      })
    : undefined;

  // 5. Commands.
  const { refusals: refusalsConfig, ...auditConfig } = config.commands.audit;
  const audit = new AuditLog({ ...auditConfig, path: resolve(dataDir, auditConfig.path), logger: log });
  const refusalLog = new AuditLog({
    path: resolve(dataDir, refusalsConfig.path),
    maxBytes: refusalsConfig.maxBytes,
    maxFiles: refusalsConfig.maxFiles,
    maxPending: auditConfig.maxPending,
    logger: log,
  });
  const refusals = new RefusalThrottle({
    sink: refusalLog,
    perSenderPerMinute: refusalsConfig.perSenderPerMinute,
    timers,
  });
  const status: StatusSource = {
    async snapshot(): Promise<StatusSnapshot> {
      const st = session.stats();
      const mem = process.memoryUsage();
      const tel = telemetry?.status();
      return {
        uptimeS: Math.round((timers.now() - started) / 1000),
        agentVersion: AGENT_VERSION,
        ...(firmwareVersion ? { firmwareVersion } : {}),
        memory: { rssBytes: mem.rss, heapUsedBytes: mem.heapUsed },
        link: {
          state: st.state,
          ...(st.onlineSince !== undefined ? { since: st.onlineSince } : {}),
          ...(config.xmpp.server ? { server: config.xmpp.server } : {}),
        },
        streamManagement: { enabled: st.smEnabled, resumes: st.resumes, unacked: st.unacked },
        reconnects: st.disconnects,
        inbound: {
          skipped: st.stanzasSkipped,
          droppedFromStrangers: st.inbound.droppedFromStrangers,
          droppedFromOperators: st.inbound.droppedFromOperators,
          strangerRepliesDropped: st.strangerRepliesDropped,
          ...(st.inbound.topDropped ? { topDropped: st.inbound.topDropped } : {}),
        },
        ...(tel
          ? {
              spool: { depth: tel.spool.readings, drops: tel.spool.droppedReadings },
              telemetry: telemetry!.stateText(),
              pubsub: { service: tel.service, nodes: [tel.nodes.telemetry, tel.nodes.status] },
            }
          : {}),
        hardware: hardwareStatusOf(board),
      };
    },
  };
  const registry = registerBuiltins(new CommandRegistry(), {
    status,
    ...(sampling ? { sampling } : {}),
    ...portsFromBoard(board, { ...(mcuLink ? { mcuLink } : {}), timers, logger: log }),
  });
  if (credentials) registry.register(credentials.command());
  const commands = new AdhocCommands({
    registry,
    authorizer,
    audit: new AuditRouter(audit, refusals),
    limits: config.commands,
    timers,
    logger: log,
    ownJid: () => session.jid,
  });
  session.disco.addFeature(...COMMAND_FEATURES);
  for (const node of commands.discoNodes()) session.disco.addNode(node, commands.discoProvider);
  const policy = new SubscriptionPolicy(authorizer, { logger: log });

  const onOnline = () => void refreshFirmwareVersion();

  return {
    session,
    board,
    telemetry,
    commands,
    sim: chosen.sim,
    async start() {
      // First: a revoked device must not touch its hardware or the network.
      await credentials?.start();
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      log.info("starting", {
        version: AGENT_VERSION,
        jid: config.xmpp.jid,
        dataDir,
        hardware: config.hardware,
        operators: config.operators.map((o) => o.jid),
      });
      chosen.sim?.start();
      await board.start();
      await refreshFirmwareVersion();
      if (telemetry) {
        await telemetry.start();
        sampling?.load();
      }
      await audit.start();
      await refusalLog.start();
      commands.start(session);
      policy.start(session);
      session.on("online", onOnline);
      session.start();
    },
    async stop() {
      log.info("stopping");
      session.off("online", onOnline);
      credentials?.stop();
      policy.stop();
      commands.stop();
      // Telemetry stops before the session so its last batch reaches the spool, and the session
      // goes offline politely (the server marks the device unavailable at once).
      await telemetry?.stop();
      await session.stop();
      refusals.flush();
      await refusalLog.stop();
      await audit.stop();
      await board.stop();
      await chosen.sim?.stop();
      log.info("stopped");
    },
  };
}

/** Runs until SIGTERM/SIGINT; returns the process exit code. */
export async function runAgent(loaded: LoadedConfig): Promise<number> {
  const log = createLogger({ level: loaded.config.log.level }).child({ device: loaded.config.device.id });
  const agent = createAgent(loaded, { log });
  let stopRequested: () => void = () => undefined;
  const stopSignal = new Promise<string>((resolve) => {
    stopRequested = () => resolve("signal");
    let signalled = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (signalled) {
        log.warn("second signal: exiting now", { signal });
        process.exit(1);
      }
      signalled = true;
      log.info("signal", { signal });
      resolve(signal);
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
  try {
    await agent.start();
  } catch (err) {
    log.error("start failed", { error: describeError(err) });
    await agent
      .stop()
      .catch((e: unknown) => log.error("stop after failed start also failed", { error: describeError(e) }));
    stopRequested();
    // A revoked device or an unverifiable revocation list: the CLI prints it and exits 3 (no restart).
    if (err instanceof ConfigError) throw err;
    return 1;
  }
  await stopSignal;
  try {
    await agent.stop();
    return 0;
  } catch (err) {
    log.error("stop failed", { error: describeError(err) });
    return 1;
  }
}
