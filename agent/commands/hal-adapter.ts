/**
 * Thin adapters from the drivers/ HAL (drivers/types.ts: DigitalOutput, DigitalInput, SensorChannel;
 * drivers/serial/client.ts: McuClient) to the commands' ports. Only types are imported from drivers/,
 * and the MCU client is taken structurally, so this room does not load any driver code.
 *
 * Both adapters take a getter, not the objects: after `restart-drivers` the composition root hands
 * out the new objects and the commands follow.
 */
import { describeError } from "../../kernel/errors.js";
import { type Logger, silentLogger } from "../../kernel/log.js";
import { realTimers, type Timers } from "../../kernel/timers.js";
import type { LinkStats } from "../../drivers/board.js";
import type { MqttHubStats } from "../../drivers/mqtt/hub.js";
import type { MqttLinkStats } from "../../drivers/mqtt/link.js";
import type { DigitalInput, DigitalOutput, SensorChannel } from "../../drivers/types.js";
import {
  asDeviceFailure,
  type BackendStatus,
  type ChannelInfo,
  type ChannelReading,
  DeviceFailure,
  type DriversPort,
  type HardwarePort,
  type McuPort,
  type McuRequestInfo,
  type OutputChange,
} from "./ports.js";

export interface HalObjects {
  sensors: readonly SensorChannel[];
  inputs: readonly DigitalInput[];
  outputs: readonly DigitalOutput[];
  /** What each output drives ("relay", "led", ...), from the board config; "output" when absent. */
  outputKinds?: Readonly<Record<string, string>>;
  inputKinds?: Readonly<Record<string, string>>;
}

/** A channel or output id that is not on the board (e.g. gone after restart-drivers with a new config). */
export class ChannelNotFoundError extends DeviceFailure {
  constructor(id: string) {
    super("channel_not_found", `no channel ${id}`, { channel: id });
  }
}

export function hardwareFromHal(hal: () => HalObjects, deps: { logger?: Logger } = {}): HardwarePort {
  const logger = (deps.logger ?? silentLogger).child({ component: "commands-hal" });
  return {
    async listChannels(): Promise<ChannelInfo[]> {
      const h = hal();
      return [
        ...h.sensors.map(
          (s): ChannelInfo => ({ id: s.id, direction: "sensor", kind: s.kind, unit: s.unit, intervalMs: s.intervalMs }),
        ),
        ...h.inputs.map((i): ChannelInfo => ({ id: i.id, direction: "input", kind: h.inputKinds?.[i.id] ?? "input" })),
        ...h.outputs.map(
          (o): ChannelInfo => ({ id: o.id, direction: "output", kind: h.outputKinds?.[o.id] ?? "output" }),
        ),
      ];
    },

    read: (channelId) => failuresAsDeviceFailures(() => read(channelId)),
    setOutput: (outputId, value, opts = {}) => failuresAsDeviceFailures(() => setOutput(outputId, value, opts)),
  };

  async function read(channelId: string): Promise<ChannelReading> {
    const h = hal();
    const sensor = h.sensors.find((s) => s.id === channelId);
    if (sensor) {
      // SensorChannel.read() resolves with quality "error" on device faults instead of rejecting.
      const r = await sensor.read();
      return {
        channelId,
        value: r.value,
        unit: r.unit,
        timestamp: r.timestamp,
        quality: r.quality,
        ...(r.error ? { error: `${r.error.code}: ${r.error.message}` } : {}),
      };
    }
    const digital = h.inputs.find((i) => i.id === channelId) ?? h.outputs.find((o) => o.id === channelId);
    if (!digital) throw new ChannelNotFoundError(channelId);
    return { channelId, value: await digital.read(), timestamp: Date.now(), quality: "good" };
  }

  async function setOutput(outputId: string, value: boolean, opts: { pulseMs?: number }): Promise<OutputChange> {
    const out = hal().outputs.find((o) => o.id === outputId);
    if (!out) throw new ChannelNotFoundError(outputId);
    let previous: boolean | undefined;
    try {
      previous = await out.read();
    } catch (err) {
      // The change matters more than the "before" figure; say it is unknown.
      logger.warn("could not read output before setting it", { output: outputId, error: describeError(err) });
    }
    if (opts.pulseMs === undefined) {
      await out.set(value);
      return { outputId, previous, value };
    }
    // The answer waits for the pulse to start (a refused or failed start is the command's
    // failure) but not for its end, possibly long after: a failed restore is logged.
    const pulse = await out.pulse(opts.pulseMs, value);
    pulse.restored.catch((err: unknown) => {
      logger.error("pulse did not restore the output", {
        output: outputId,
        pulseMs: opts.pulseMs,
        error: describeError(err),
      });
    });
    return { outputId, previous, value, pulseMs: opts.pulseMs, restoresTo: !value };
  }
}

/** The boundary of the HAL: its typed errors become DeviceFailures; a bug (TypeError, ...) stays what it is. */
async function failuresAsDeviceFailures<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw asDeviceFailure(err);
  }
}

/** The parts of drivers/serial/client.ts McuClient the serial-command uses. */
export interface McuClientLike {
  ping(data?: Buffer): Promise<Buffer>;
  version(): Promise<string>;
  inventory(): Promise<{ sensors: string[]; actuators: string[] }>;
  readSensor(name: string): Promise<{ value: number; ageMs: number }>;
  getActuator(name: string): Promise<number>;
  setActuator(name: string, value: number): Promise<number>;
}

/** The documented requests of the framed serial protocol (docs/serial-protocol.md) an operator may send. */
export const MCU_REQUESTS: readonly McuRequestInfo[] = [
  { name: "ping", description: "liveness check; answers pong" },
  { name: "version", description: "firmware version" },
  { name: "list", description: "sensors and actuators the firmware knows" },
  { name: "read", description: "one sensor value and its age", argument: "sensor" },
  { name: "get", description: "an actuator's current value", argument: "actuator" },
  { name: "set", description: "set an actuator; answers the applied value", argument: "actuator=value" },
];

/** A bad argument or a device that did not answer in time: reported to the operator as a failed command. */
export class McuRequestError extends DeviceFailure {}

const NAME = /^[A-Za-z0-9_.:-]{1,32}$/;
const SET_ARG = /^([A-Za-z0-9_.:-]{1,32})\s*[=, ]\s*(-?\d+(?:\.\d+)?)$/;

export function mcuPortFrom(
  client: () => McuClientLike | undefined,
  deps: { timers?: Timers; logger?: Logger } = {},
): McuPort {
  const timers = deps.timers ?? realTimers;
  const logger = (deps.logger ?? silentLogger).child({ component: "commands-mcu" });
  const name = (req: string, arg: string | undefined): string => {
    const n = arg?.trim() ?? "";
    if (!NAME.test(n))
      throw new McuRequestError(
        "mcu_bad_argument",
        `${req} needs a name (letters, digits, _ . : -), got ${JSON.stringify(arg ?? "")}`,
      );
    return n;
  };
  const call = async (c: McuClientLike, req: string, arg: string | undefined): Promise<string> => {
    switch (req) {
      case "ping":
        return (await c.ping()).toString("utf8");
      case "version":
        return await c.version();
      case "list": {
        const inv = await c.inventory();
        return `sensors: ${inv.sensors.join(", ") || "none"}; actuators: ${inv.actuators.join(", ") || "none"}`;
      }
      case "read": {
        const v = await c.readSensor(name(req, arg));
        return `${v.value} (age ${v.ageMs} ms)`;
      }
      case "get":
        return String(await c.getActuator(name(req, arg)));
      case "set": {
        const m = SET_ARG.exec(arg?.trim() ?? "");
        if (!m)
          throw new McuRequestError("mcu_bad_argument", `set needs actuator=value, got ${JSON.stringify(arg ?? "")}`);
        return `applied ${await c.setActuator(m[1]!, Number(m[2]))}`;
      }
      default:
        throw new McuRequestError("mcu_unknown_request", `unknown request ${req}`, { request: req });
    }
  };
  return {
    requests: MCU_REQUESTS,
    async request(req, arg, timeoutMs) {
      const c = client();
      if (!c) throw new McuRequestError("mcu_unavailable", "no microcontroller is configured or it is not started");
      let timer: { cancel(): void } | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = timers.setTimeout(
          () => reject(new McuRequestError("mcu_timeout", `no answer to ${req} within ${timeoutMs} ms`, { timeoutMs })),
          timeoutMs,
        );
      });
      const work = failuresAsDeviceFailures(() => call(c, req, arg));
      // The driver has its own timeout too; this one makes the operator's choice binding. When the
      // deadline wins, the request's later failure has no one waiting: log it instead of an unhandled rejection.
      work.catch((err: unknown) => logger.debug("mcu request failed", { request: req, error: describeError(err) }));
      try {
        return await Promise.race([work, deadline]);
      } finally {
        timer?.cancel();
      }
    },
  };
}

/** The parts of drivers/board.ts Board the adapters use (structural, so no driver code is loaded here). */
export interface BoardLike {
  channels(): SensorChannel[];
  inputs(): DigitalInput[];
  outputs(): DigitalOutput[];
  links(): ReadonlyArray<{ id: string }>;
  client(linkId: string): McuClientLike;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Hardware, MCU and restart ports over a drivers/ Board; `mcuLink` names the serial link serial-command talks to. */
export function portsFromBoard(
  board: BoardLike,
  opts: {
    mcuLink?: string;
    outputKinds?: Record<string, string>;
    inputKinds?: Record<string, string>;
    timers?: Timers;
    logger?: Logger;
  } = {},
): { hardware: HardwarePort; mcu: McuPort | undefined; drivers: DriversPort } {
  const deps = { ...(opts.logger ? { logger: opts.logger } : {}) };
  const hardware = hardwareFromHal(
    () => ({
      sensors: board.channels(),
      inputs: board.inputs(),
      outputs: board.outputs(),
      ...(opts.outputKinds ? { outputKinds: opts.outputKinds } : {}),
      ...(opts.inputKinds ? { inputKinds: opts.inputKinds } : {}),
    }),
    deps,
  );
  const linkId = opts.mcuLink ?? board.links()[0]?.id;
  const mcu =
    linkId === undefined
      ? undefined
      : mcuPortFrom(() => board.client(linkId), { ...deps, ...(opts.timers ? { timers: opts.timers } : {}) });
  const drivers: DriversPort = {
    async restart() {
      await failuresAsDeviceFailures(async () => {
        await board.stop();
        await board.start();
      });
      return {
        restarted: [
          ...board.links().map((l) => `serial:${l.id}`),
          ...board.outputs().map((o) => `output:${o.id}`),
          ...board.inputs().map((i) => `input:${i.id}`),
        ],
      };
    },
  };
  return { hardware, mcu, drivers };
}

/** The parts of Board that report health (structural; types only from drivers/). */
export interface BoardHealthLike {
  gpioLines(): Array<{ id: string; device: string; direction: "out" | "in" }>;
  stats(): Record<string, LinkStats>;
  mqtt(): { link: { url: string; stats(): MqttLinkStats }; stats(): MqttHubStats } | undefined;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** Each backend's state and counters, worded for a person reading `status` in a client. */
export function hardwareStatusOf(board: BoardHealthLike): BackendStatus[] {
  const out: BackendStatus[] = [];
  const lines = board.gpioLines();
  if (lines.length > 0)
    out.push({
      id: "gpio",
      label: "GPIO",
      state: `${plural(lines.length, "line")} held: ${lines.map((l) => `${l.id} (${l.device}, ${l.direction})`).join(", ")}`,
      activity: [],
      problems: [],
    });
  for (const [id, s] of Object.entries(board.stats())) {
    const label = `Serial ${id}`;
    if (s.protocol === "framed")
      out.push({
        id: `serial.${id}`,
        label,
        state: s.state,
        activity: [
          ["frames in", s.link.framesIn],
          ["requests", s.requests.requests],
          ["reopens", s.link.reopens],
        ],
        problems: [
          ["timeouts", s.requests.timeouts],
          ["device errors", s.requests.remoteErrors],
          ["busy refusals", s.requests.busy],
          ["bad CRC", s.link.badCrc],
          ["partial frames", s.link.partialFrames],
          ["oversize frames", s.link.oversizeFrames],
          ["garbage bytes", s.link.garbageBytes],
          ["unmatched responses", s.requests.unmatchedResponses],
          ["unplugs", s.link.unplugs],
        ],
      });
    else
      out.push({
        id: `serial.${id}`,
        label,
        state: s.state,
        activity: [
          ["lines", s.link.lines],
          ["reopens", s.link.reopens],
        ],
        problems: [
          ["overlong lines", s.link.overlongLines],
          ["malformed values", s.link.malformedTokens],
          ["dropped bytes", s.link.droppedBytes],
          ["unplugs", s.link.unplugs],
        ],
      });
  }
  const mqtt = board.mqtt();
  if (mqtt) {
    const link = mqtt.link.stats();
    const devices = mqtt.stats();
    out.push({
      id: "mqtt",
      label: "MQTT devices",
      state: `${link.connected ? "connected to" : "not connected to"} ${link.url}${link.lastError && !link.connected ? ` (${link.lastError.message})` : ""}`,
      activity: [
        ["messages", devices.messages],
        ["commands sent", link.published],
        ["connects", link.connects],
      ],
      problems: [
        ["malformed", devices.malformed],
        ["oversize", devices.oversize],
        ["wrong type", devices.wrongType],
        ["replaced before read", devices.superseded],
        ["on unknown topics", devices.unmatched],
        ["publish failures", link.publishFailures],
        ["busy refusals", link.busy],
        ["disconnects", link.disconnects],
      ],
    });
  }
  return out;
}
