/**
 * Composition root: the only place that knows the session, the hardware, telemetry and commands
 * together. Each step's wiring lives in agent/compose/ (one module per step); this file is the
 * order. Steps start top to bottom and stop bottom to top (agent/compose/lifecycle.ts): a stop
 * that fails is logged and the rest still stop, then one AgentError `agent_stop_failed` names
 * every step that failed.
 *
 *   1. credentials check: a revoked device must not touch its hardware or the network
 *   2. state directory
 *   3. memory watch: RSS against the unit's MemoryMax, from here on (the spool's replay included)
 *   4. simulator (when `hardware` selects it; only then is firmware-sim loaded)
 *   5. board
 *   6. firmware version (asked again at every login)
 *   7. audit logs: operators' records, then refusals
 *   8. session, held open: only stopped here, so everything below stops while it is online
 *   9. telemetry: spool -> publisher -> sampler (drains what a crash left as soon as online)
 *  10. sampling settings
 *  11. commands (XEP-0050)
 *  12. presence subscription policy (operators only)
 *  13. online: session.start(), last, once everything that answers it is in place
 *
 * Why the session is closed at 8 and the audit logs open at 7: telemetry then stops while the
 * session is up (its last batch reaches the spool, in-flight publishes end without a failure), the
 * commands' aborted runs still answer the operator and are still written to the audit log, and
 * the session goes offline politely before the board releases its lines.
 */
import { mkdirSync } from "node:fs";
import type { Board, BoardBackends } from "../drivers/board.js";
import type { SimBoard } from "../firmware-sim/backends.js";
import { ConfigError, describeError } from "../kernel/errors.js";
import { createLogger, type Logger } from "../kernel/log.js";
import { realTimers, type Timers } from "../kernel/timers.js";
import type { XmppSession } from "../xmpp/session.js";
import type { AdhocCommands } from "./commands/adhoc.js";
import { Authorizer } from "./commands/authorize.js";
import { composeCommands } from "./compose/commands.js";
import { FirmwareVersion } from "./compose/firmware-version.js";
import { composeHardware } from "./compose/hardware.js";
import { Lifecycle } from "./compose/lifecycle.js";
import { composeSession } from "./compose/session.js";
import { statusSource } from "./compose/status.js";
import { composeTelemetry } from "./compose/telemetry.js";
import { composeUpdate } from "./compose/update.js";
import type { LoadedConfig } from "./config/load.js";
import { MemoryWatch } from "./health/memory-watch.js";
import type { TelemetryService } from "./telemetry/service.js";
import { AGENT_VERSION } from "./version.js";

export { gpioInstallProblem } from "./compose/hardware.js";

export interface Agent {
  readonly session: XmppSession;
  readonly board: Board;
  readonly telemetry: TelemetryService | undefined;
  readonly commands: AdhocCommands;
  /** The simulated board when `hardware` selects the simulator (tests and the demo drive it). */
  readonly sim: SimBoard | undefined;
  start(): Promise<void>;
  /** Rejects with AgentError `agent_stop_failed` when a step failed to stop; all others stopped. */
  stop(): Promise<void>;
}

export interface AgentDeps {
  log?: Logger;
  timers?: Timers;
  /** Replaces the backends chosen by `hardware` (tests). */
  backends?: BoardBackends;
  /** The reconnect jitter's random source (default Math.random; the fleet simulator's --no-jitter). */
  random?: () => number;
  /**
   * Stop and exit so that the service manager starts the agent again (into another release: the
   * update command, a rollback). runAgent exits with EXIT_RESTART. Default: logged, nothing else.
   */
  requestRestart?: (reason: string) => void;
}

/** Async because the simulator, when `hardware` selects it, is imported on demand. */
export async function createAgent(loaded: LoadedConfig, deps: AgentDeps = {}): Promise<Agent> {
  const { config } = loaded;
  const log = deps.log ?? createLogger({ level: config.log.level }).child({ device: config.device.id });
  const timers = deps.timers ?? realTimers;
  const startedAt = timers.now();

  const { board, sim, mcuLink } = await composeHardware(config, {
    log,
    timers,
    ...(deps.backends ? { backends: deps.backends } : {}),
  });
  const firmware = new FirmwareVersion(board, mcuLink, log);
  const authorizer = new Authorizer(config.operators);
  // Presence carries the device status, and telemetry needs the session: read it late.
  let telemetry: TelemetryService | undefined;
  const { session, credentials } = composeSession(loaded, {
    log,
    timers,
    isOperator: (jid) => authorizer.isOperator(jid),
    presenceChildren: () => telemetry?.presenceChildren() ?? [],
    ...(deps.random ? { random: deps.random } : {}),
  });
  const memory = new MemoryWatch({ config: config.memory, timers, logger: log });
  const parts = await composeTelemetry(config, {
    session,
    board,
    firmwareVersion: () => firmware.current,
    timers,
    log,
    memory: () => memory.usage(),
  });
  telemetry = parts.telemetry;
  const { sampling } = parts;
  const status = statusSource({
    session,
    telemetry,
    board,
    firmwareVersion: () => firmware.current,
    server: config.xmpp.server,
    startedAt,
    timers,
    memory: () => memory.snapshot(),
  });
  const restart =
    deps.requestRestart ??
    ((reason: string) => log.warn("restart requested, but nothing restarts this agent", { reason }));
  const update = await composeUpdate(config, { session, telemetry: () => telemetry, restart, timers, log });
  const { commands, policy, audit } = composeCommands(config, {
    session,
    board,
    mcuLink,
    authorizer,
    status,
    sampling,
    extra: [...(credentials ? [credentials.command()] : []), ...(update.command ? [update.command] : [])],
    timers,
    log,
  });
  const onOnline = () => void firmware.refresh();

  const lifecycle = new Lifecycle(
    [
      { name: "credentials", start: () => credentials?.start(), stop: () => credentials?.stop() },
      {
        name: "state directory",
        start: () => {
          mkdirSync(config.device.dataDir, { recursive: true, mode: 0o700 });
          log.info("starting", {
            version: AGENT_VERSION,
            jid: config.xmpp.jid,
            dataDir: config.device.dataDir,
            hardware: config.hardware,
            operators: config.operators.map((o) => o.jid),
          });
        },
      },
      { name: "memory watch", start: () => memory.start(), stop: () => memory.stop() },
      { name: "simulator", start: () => sim?.start(), stop: () => sim?.stop() },
      { name: "board", start: () => board.start(), stop: () => board.stop() },
      {
        name: "firmware version",
        start: async () => {
          await firmware.refresh();
          session.on("online", onOnline);
        },
        stop: () => session.off("online", onOnline),
      },
      { name: "audit log", start: () => audit.log.start(), stop: () => audit.log.stop() },
      {
        name: "refusal log",
        start: () => audit.refusalLog.start(),
        stop: async () => {
          audit.refusals.flush();
          await audit.refusalLog.stop();
        },
      },
      { name: "session", stop: () => session.stop() },
      { name: "telemetry", start: () => telemetry?.start(), stop: () => telemetry?.stop() },
      { name: "sampling settings", start: () => sampling?.load() },
      { name: "commands", start: () => commands.start(session), stop: () => commands.stop() },
      { name: "presence policy", start: () => policy.start(session), stop: () => policy.stop() },
      { name: "online", start: () => session.start() },
      { name: "update trial", start: () => void update.trial?.start(), stop: () => update.trial?.stop() },
    ],
    log,
  );

  return {
    session,
    board,
    telemetry,
    commands,
    sim,
    start: () => lifecycle.start(),
    async stop() {
      log.info("stopping");
      await lifecycle.stop();
      log.info("stopped");
    },
  };
}

/** Runs until SIGTERM/SIGINT; returns the process exit code. */
/** runAgent's exit status when the agent asks to be started again (EX_TEMPFAIL; the unit restarts it). */
export const EXIT_RESTART = 75;

export async function runAgent(loaded: LoadedConfig): Promise<number> {
  const log = createLogger({ level: loaded.config.log.level }).child({ device: loaded.config.device.id });
  let restartRequested: (reason: string) => void = () => undefined;
  const agent = await createAgent(loaded, { log, requestRestart: (reason) => restartRequested(reason) });
  let stopRequested: () => void = () => undefined;
  const stopSignal = new Promise<string>((resolve) => {
    stopRequested = () => resolve("signal");
    restartRequested = (reason) => {
      log.info("restarting", { reason });
      resolve("restart");
    };
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
  const why = await stopSignal;
  try {
    await agent.stop();
    return why === "restart" ? EXIT_RESTART : 0;
  } catch (err) {
    log.error("stop failed", { error: describeError(err) });
    return 1;
  }
}
