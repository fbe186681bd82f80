/**
 * The `board` section of the agent config: which hardware the agent has and which backend serves
 * each channel. It names lines and devices, never "real or simulated": that choice belongs to the
 * entrypoint, so the same file runs on a Pi and, with the simulator backends, on a laptop.
 * Documented in docs/hardware.md.
 */
import {
  bool,
  def,
  int,
  ms,
  num,
  obj,
  oneOf,
  opt,
  record,
  str,
  tagged,
  type Infer,
} from "../kernel/schema-dsl.js";
import { mqttBrokerSchema, mqttChannelSchema, mqttOutputSchema } from "./mqtt/config.js";

/** Same rule as the telemetry channel ids (agent/telemetry/reading.ts), repeated here so drivers/ stays independent. */
export const BOARD_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$/;
const NAME_PATTERN = /^[\x21-\x7e]{1,32}$/;
const name = () => str({ pattern: NAME_PATTERN, patternHint: "1-32 printable ASCII characters, no spaces" });

export const gpioSectionSchema = obj({
  /**
   * Label of the GPIO chip that `line` numbers refer to (e.g. "pinctrl-bcm2711", "pinctrl-rp1").
   * Unset: the Raspberry Pi header chip, found by label, or the only chip.
   */
  chip: opt(str({ minLength: 1, maxLength: 64 })),
});

export const serialLinkSchema = obj({
  /** Device path; prefer a stable /dev/serial/by-id/... link over /dev/ttyUSB0. */
  path: str({ minLength: 1 }),
  baudRate: def(int({ min: 50, max: 4_000_000 }), 115200),
  dataBits: def(int({ min: 5, max: 8 }), 8),
  parity: def(oneOf(["none", "even", "odd"]), "none"),
  stopBits: def(int({ min: 1, max: 2 }), 1),
  /** framed: docs/serial-protocol.md (request/response, CRC). line: the device prints `key=value` lines. */
  protocol: def(oneOf(["framed", "line"]), "framed"),
  /** line protocol: longest line kept, in bytes; longer lines are dropped whole. */
  maxLineBytes: def(int({ min: 16, max: 65536 }), 256),
  /** Largest frame payload in either direction. */
  maxFrameBytes: def(int({ min: 16, max: 65535 }), 1024),
  /** A started frame with no new byte for this long is abandoned and counted as partial. */
  frameTimeoutMs: def(ms({ min: 1, max: 60_000 }), 100),
  requestTimeoutMs: def(ms({ min: 10, max: 600_000 }), 1000),
  /** Requests waiting for an answer at once; more are refused (serial_busy), not queued. */
  maxInFlight: def(int({ min: 1, max: 255 }), 8),
  reopen: obj({
    initialDelayMs: def(ms({ min: 10 }), 500),
    maxDelayMs: def(ms({ min: 10 }), 30_000),
    factor: def(num({ min: 1, max: 10 }), 2),
  }),
});

/** An output: what drives it (`source`) decides which keys it takes. */
export const outputSchema = tagged(
  "source",
  {
    gpio: {
      /** Chip-relative line number ("BCM 17" is 17 whatever the kernel's sysfs base). */
      line: int({ min: 0, max: 1023 }),
      chip: opt(str({ minLength: 1, maxLength: 64 })),
      activeLow: def(bool(), false),
      /** Level set when the agent starts. */
      initial: def(bool(), false),
    },
    serial: {
      /** The link id (a key of board.serial) and the actuator's name on the device. */
      link: str({ minLength: 1 }),
      actuator: name(),
    },
    /** Command topic, payloads, optional state topic for confirmation (docs/mqtt.md). */
    mqtt: { mqtt: mqttOutputSchema },
  },
  { noun: "output", article: { mqtt: "an" } },
);

export const inputSchema = obj({
  line: int({ min: 0, max: 1023 }),
  chip: opt(str({ minLength: 1, maxLength: 64 })),
  activeLow: def(bool(), false),
  /** Which debounced edges are reported as events. */
  edge: def(oneOf(["none", "rising", "falling", "both"]), "both"),
  /** A level must hold this long to count; 20 ms suits most push buttons. */
  debounceMs: def(ms({ max: 10_000 }), 20),
});

const channelCommon = {
  /** What is measured: temperature, humidity, contact, ... */
  kind: str({ minLength: 1, maxLength: 64 }),
  unit: def(str({ maxLength: 32 }), ""),
  intervalMs: def(ms({ min: 100 }), 10_000),
};

/** A sensor channel: where its values come from (`source`) decides which keys it takes. */
export const channelSchema = tagged(
  "source",
  {
    serial: {
      ...channelCommon,
      /** The link id and the sensor's name on the device. */
      link: str({ minLength: 1 }),
      sensor: name(),
      /** A sample older than this is "stale". Default 3 × intervalMs. */
      staleAfterMs: opt(ms({ min: 1 })),
      /** A value unchanged for this long is "stale" (stuck sensor). Unset: off. Framed links only. */
      stuckAfterMs: opt(ms({ min: 1 })),
    },
    gpio: {
      ...channelCommon,
      /** An input id (a key of board.inputs). */
      input: str({ minLength: 1 }),
    },
    mqtt: {
      ...channelCommon,
      /** No message for this long is "stale"; default from discovery's expire_after, else never. */
      staleAfterMs: opt(ms({ min: 1 })),
      /** The topic and (optionally) the JSON path of the value (docs/mqtt.md). */
      mqtt: mqttChannelSchema,
    },
  },
  { noun: "channel", article: { mqtt: "an" } },
);

export const boardConfigSchema = obj(
  {
    gpio: gpioSectionSchema,
    /** Longest pulse any output accepts, whatever drives it (GPIO, MCU actuator, MQTT switch): drivers/pulse.ts. */
    maxPulseMs: def(ms({ min: 1, max: 3_600_000 }), 60_000),
    serial: record(serialLinkSchema, { keyPattern: BOARD_ID_PATTERN }),
    outputs: record(outputSchema, { keyPattern: BOARD_ID_PATTERN }),
    inputs: record(inputSchema, { keyPattern: BOARD_ID_PATTERN }),
    channels: record(channelSchema, { keyPattern: BOARD_ID_PATTERN }),
    /** The local MQTT broker of MQTT channels and outputs (docs/mqtt.md). */
    mqtt: opt(mqttBrokerSchema),
  },
  {
    check(v, ctx) {
      if (v.mqtt === undefined)
        for (const [section, entries] of [
          ["outputs", v.outputs],
          ["channels", v.channels],
        ] as const)
          for (const [id, e] of Object.entries(entries))
            if (e.source === "mqtt") ctx.at(section).at(id).at("source").fail("mqtt needs a broker in board.mqtt");
      const links = Object.keys(v.serial);
      const noLink = `names no link in board.serial (have: ${links.join(", ") || "none"})`;
      for (const [id, o] of Object.entries(v.outputs)) {
        if (o.source !== "serial") continue;
        const at = ctx.at("outputs").at(id);
        const link = v.serial[o.link];
        if (!link) at.at("link").fail(noLink);
        else if (link.protocol !== "framed")
          at.at("link").fail(`names a ${link.protocol}-protocol link; actuators need a framed link`);
      }
      for (const [id, c] of Object.entries(v.channels)) {
        const at = ctx.at("channels").at(id);
        if (c.source === "serial") {
          const link = v.serial[c.link];
          if (!link) at.at("link").fail(noLink);
          else if (link.protocol !== "framed" && c.stuckAfterMs !== undefined)
            at.at("stuckAfterMs").fail("applies to channels on framed links only");
        }
        if (c.source === "gpio" && !(c.input in v.inputs))
          at.at("input").fail(`names no input in board.inputs (have: ${Object.keys(v.inputs).join(", ") || "none"})`);
      }
      // One line, one owner: two entries on the same pin would fight over it at runtime.
      const owners = new Map<string, string>();
      const claim = (chip: string | undefined, line: number, path: string[]) => {
        const key = `${chip ?? v.gpio.chip ?? ""}/${line}`;
        const prev = owners.get(key);
        let c = ctx;
        for (const p of path) c = c.at(p);
        if (prev) c.at("line").fail(`line ${line} is already used by ${prev}`);
        else owners.set(key, path.join("."));
      };
      for (const [id, o] of Object.entries(v.outputs)) if (o.source === "gpio") claim(o.chip, o.line, ["outputs", id]);
      for (const [id, i] of Object.entries(v.inputs)) claim(i.chip, i.line, ["inputs", id]);
      for (const [id, l] of Object.entries(v.serial))
        if (l.reopen.maxDelayMs < l.reopen.initialDelayMs)
          ctx.at("serial").at(id).at("reopen").at("maxDelayMs").fail("must be >= initialDelayMs");
    },
  },
);

export type BoardConfig = Exclude<Infer<typeof boardConfigSchema>, symbol>;
export type SerialLinkConfig = BoardConfig["serial"][string];
export type OutputConfig = BoardConfig["outputs"][string];
export type InputConfig = BoardConfig["inputs"][string];
export type ChannelConfig = BoardConfig["channels"][string];

/** Whether the board needs a GPIO backend: any input (inputs are GPIO lines) or a GPIO output. */
export function boardUsesGpio(config: Pick<BoardConfig, "inputs" | "outputs">): boolean {
  return Object.keys(config.inputs).length > 0 || Object.values(config.outputs).some((o) => o.source === "gpio");
}
