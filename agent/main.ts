/**
 * Composition root: the only place that knows the session, the hardware, telemetry and commands
 * together, and wires them in a fixed order. Everything else gets what it needs as typed
 * dependencies.
 */
import { mkdirSync } from "node:fs";
import type { LoadedConfig } from "./config/load.js";
import { describeError } from "./core/errors.js";
import { createLogger, type Logger } from "./core/log.js";
import { AGENT_NAME, AGENT_VERSION } from "./version.js";
import { XmppSession } from "./xmpp/session.js";

export interface Agent {
  readonly session: XmppSession;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface AgentDeps {
  log?: Logger;
}

export function createAgent(loaded: LoadedConfig, deps: AgentDeps = {}): Agent {
  const { config, password } = loaded;
  const log = deps.log ?? createLogger({ level: config.log.level }).child({ device: config.device.id });

  // 1. The XMPP session: owns the link, knows nothing of sensors.
  const session = new XmppSession({
    config: config.xmpp,
    password,
    log,
    software: { name: AGENT_NAME, version: AGENT_VERSION },
  });
  session.on("fault", (err) => log.error("needs attention", { error: err }));

  return {
    session,
    async start() {
      mkdirSync(config.device.dataDir, { recursive: true, mode: 0o700 });
      log.info("starting", { version: AGENT_VERSION, jid: config.xmpp.jid, dataDir: config.device.dataDir });
      session.start();
    },
    async stop() {
      log.info("stopping");
      await session.stop();
    },
  };
}

/** Runs until SIGTERM/SIGINT; returns the process exit code. */
export async function runAgent(loaded: LoadedConfig): Promise<number> {
  const log = createLogger({ level: loaded.config.log.level }).child({ device: loaded.config.device.id });
  const agent = createAgent(loaded, { log });
  let stopping: Promise<void> | undefined;
  const stop = (signal: string) => {
    if (stopping) {
      log.warn("second signal: exiting now", { signal });
      process.exit(1);
    }
    log.info("signal", { signal });
    stopping = agent.stop();
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  try {
    await agent.start();
  } catch (err) {
    log.error("start failed", { error: describeError(err) });
    await agent.stop().catch(() => undefined);
    return 1;
  }
  await new Promise<void>((resolve) => {
    const wait = setInterval(() => {
      if (stopping) {
        clearInterval(wait);
        stopping.then(resolve, resolve);
      }
    }, 100);
  });
  return 0;
}
