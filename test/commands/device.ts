/**
 * A command-serving device for the real-peer suites: a real XmppSession logged in to the harness
 * Prosody, a drivers/ Board on the simulated GPIO and MCU, and the commands room wired the way
 * agent/main.ts is expected to wire it (see the report in docs/commands.md "Wiring").
 */
import { join } from "node:path";
import { Ctx, INVALID } from "../../kernel/schema-dsl.js";
import { AdhocCommands, COMMAND_FEATURES, type AdhocLimits } from "../../agent/commands/adhoc.js";
import { AuditLog } from "../../agent/commands/audit.js";
import { Authorizer, type OperatorRule } from "../../agent/commands/authorize.js";
import { registerBuiltins } from "../../agent/commands/builtin/index.js";
import { portsFromBoard } from "../../agent/commands/hal-adapter.js";
import type { ChannelSettings, SamplingPort, StatusSource } from "../../agent/commands/ports.js";
import { SubscriptionPolicy } from "../../agent/commands/presence.js";
import { CommandRegistry } from "../../agent/commands/registry.js";
import { memoryFigures } from "../../agent/health/memory-watch.js";
import type { XmppSession } from "../../xmpp/session.js";
import { Board } from "../../drivers/board.js";
import { type BoardConfig, boardConfigSchema } from "../../drivers/config.js";
import { SimGpioBackend } from "../../firmware-sim/gpio.js";
import { SimulatedMcu } from "../../firmware-sim/mcu.js";
import { SimSerialBackend } from "../../firmware-sim/serial-backend.js";
import type { ProsodyHandle } from "../harness/prosody.js";
import { newSession, testXmppConfig, waitOnline } from "../xmpp/helpers.js";

export const RELAY_LINE = 17;

const BOARD = {
  serial: { mcu0: { path: "/dev/ttySIM0", reopen: { initialDelayMs: 100, maxDelayMs: 100, factor: 1 } } },
  outputs: {
    relay: { source: "gpio", line: RELAY_LINE, activeLow: true },
    fan: { source: "serial", link: "mcu0", actuator: "fan" },
  },
  inputs: { button: { line: 27, debounceMs: 20 } },
  channels: {
    temp: { source: "serial", link: "mcu0", sensor: "temperature", kind: "temperature", unit: "°C", intervalMs: 1000 },
    door: { source: "gpio", input: "button", kind: "contact" },
  },
};

function boardConfig(): BoardConfig {
  const ctx = new Ctx();
  const v = boardConfigSchema.parse(BOARD, ctx);
  if (v === INVALID) throw new Error(`bad board config: ${JSON.stringify(ctx.issues)}`);
  return v;
}

/**
 * Stand-in for the telemetry room's persisted sampling settings (in memory here: the real one is
 * wired by the composition root and persists to disk).
 */
export class MemorySampling implements SamplingPort {
  readonly minIntervalMs = 100;
  readonly maxIntervalMs = 86_400_000;
  readonly settings = new Map<string, ChannelSettings>([
    ["temp", { intervalMs: 1000, enabled: true }],
    ["door", { intervalMs: 10_000, enabled: true }],
  ]);
  async channels() {
    return [...this.settings.keys()];
  }
  async get(id: string) {
    return { ...this.settings.get(id)! };
  }
  async update(id: string, patch: Partial<ChannelSettings>) {
    const before = await this.get(id);
    const after = { ...before, ...patch };
    this.settings.set(id, after);
    return { before, after };
  }
}

export interface CommandDevice {
  session: XmppSession;
  jid: string;
  adhoc: AdhocCommands;
  audit: AuditLog;
  auditPath: string;
  gpio: SimGpioBackend;
  mcu: SimulatedMcu;
  board: Board;
  sampling: MemorySampling;
  policy: SubscriptionPolicy;
  stop(): Promise<void>;
}

export async function startCommandDevice(opts: {
  prosody: ProsodyHandle;
  account: string;
  password: string;
  operators: OperatorRule[];
  dir: string;
  limits?: Partial<AdhocLimits>;
  /** Overrides of the session's test config (e.g. streamManagement timings). */
  xmpp?: Record<string, unknown>;
}): Promise<CommandDevice> {
  const gpio = new SimGpioBackend();
  const serial = new SimSerialBackend();
  const mcu = new SimulatedMcu({ random: () => 0.5 });
  serial.addDevice("/dev/ttySIM0", mcu);
  const board = new Board({ config: boardConfig(), backends: { gpio, serial } });
  await board.start();

  const authorizer = new Authorizer(opts.operators);
  const session = newSession(
    testXmppConfig(opts.prosody, `${opts.account}@${opts.prosody.domain}`, opts.password, opts.xmpp),
    opts.password,
    { isOperator: (jid) => authorizer.isOperator(jid) },
  );
  const auditPath = join(opts.dir, "audit.jsonl");
  const audit = new AuditLog({ path: auditPath, maxBytes: 1 << 20, maxFiles: 3, maxPending: 10_000 });
  await audit.start();
  const started = Date.now();
  const status: StatusSource = {
    async snapshot() {
      const st = session.stats();
      return {
        uptimeS: (Date.now() - started) / 1000,
        agentVersion: "test",
        firmwareVersion: await board.client("mcu0").version(),
        memory: memoryFigures(process.memoryUsage()),
        link: { state: st.state, ...(st.onlineSince !== undefined ? { since: st.onlineSince } : {}) },
        streamManagement: { enabled: st.smEnabled, resumes: st.resumes, unacked: st.unacked },
        reconnects: Math.max(0, st.connects - 1),
      };
    },
  };
  const sampling = new MemorySampling();
  const registry = registerBuiltins(new CommandRegistry(), {
    status,
    sampling,
    ...portsFromBoard(board, { mcuLink: "mcu0", outputKinds: { relay: "relay", fan: "fan" } }),
  });
  const adhoc = new AdhocCommands({
    registry,
    authorizer,
    audit,
    ...(opts.limits ? { limits: opts.limits } : {}),
    ownJid: () => session.jid,
  });
  // The wiring agent/main.ts is expected to do:
  session.disco.addFeature(...COMMAND_FEATURES);
  for (const node of adhoc.discoNodes()) session.disco.addNode(node, adhoc.discoProvider);
  adhoc.start(session);
  const policy = new SubscriptionPolicy(authorizer);
  policy.start(session);

  const online = waitOnline(session);
  session.start();
  const { jid } = await online;
  return {
    session,
    jid,
    adhoc,
    audit,
    auditPath,
    gpio,
    mcu,
    board,
    sampling,
    policy,
    async stop() {
      policy.stop();
      adhoc.stop();
      await session.stop();
      await audit.stop();
      await board.stop();
    },
  };
}
