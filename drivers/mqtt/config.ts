/**
 * Config schemas of the MQTT pieces: a broker connection (used by `board.mqtt` for MQTT devices and
 * by `mqttMirror.broker` for the telemetry mirror), the `mqtt` block of an MQTT sensor channel and
 * of an MQTT output. drivers/config.ts and the mirror config compose them. Documented in docs/mqtt.md
 * and, key by key, in docs/configuration.md.
 */
import { bool, bytes, def, int, ms, num, obj, opt, str, type Infer } from "../../kernel/schema-dsl.js";

/** mqtt://host:port or mqtts://host:port (IPv6 hosts in brackets). */
export const BROKER_URL_PATTERN = /^mqtts?:\/\/(?:\[[0-9a-fA-F:]+\]|[^\s:/[\]@]+)(?::\d{1,5})?\/?$/;
/** An exact topic: no wildcards, no NUL, at most 512 characters (we subscribe to it by name). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is exactly what a topic may not hold
const TOPIC_PATTERN = /^[^#+\u0000]{1,512}$/;
const topic = () => str({ pattern: TOPIC_PATTERN, patternHint: "an MQTT topic without wildcards (+, #)" });
/** A dotted path into a JSON payload: `temperature`, `state`, `sensors.0.value`, `a[2].b`. */
export const JSON_PATH_PATTERN = /^[A-Za-z0-9_$@-]+(?:\[\d+\])*(?:\.[A-Za-z0-9_$@-]+(?:\[\d+\])*)*$/;
const jsonPath = () =>
  str({ pattern: JSON_PATH_PATTERN, patternHint: "a dotted JSON path like temperature or a.b[0]" });

export const mqttBrokerSchema = obj(
  {
    /** mqtt://127.0.0.1:1883 or mqtts://broker.lan:8883. */
    url: str({ pattern: BROKER_URL_PATTERN, patternHint: "mqtt://host:port or mqtts://host:port" }),
    /** Unset: <device id>-board or <device id>-mirror. Must be unique on the broker. */
    clientId: opt(str({ minLength: 1, maxLength: 128 })),
    username: opt(str({ minLength: 1 })),
    /** Inline password; prefer passwordFile (mode 0600). */
    password: opt(str({ minLength: 1 })),
    passwordFile: opt(str({ minLength: 1 })),
    /** PEM CA (or self-signed broker certificate) to trust instead of the system store. mqtts only. */
    caFile: opt(str({ minLength: 1 })),
    /** Client certificate and key (PEM) for brokers that authenticate clients by certificate. */
    certFile: opt(str({ minLength: 1 })),
    keyFile: opt(str({ minLength: 1 })),
    /** TLS server name when it differs from the URL's host. */
    tlsServername: opt(str({ minLength: 1 })),
    /** 5 (MQTT 5, lets the broker enforce maxPayloadBytes) or 4 (MQTT 3.1.1, for old brokers). */
    protocolVersion: def(int({ min: 4, max: 5 }), 5),
    keepaliveS: def(int({ min: 0, max: 65535 }), 30),
    connectTimeoutMs: def(ms({ min: 100 }), 10_000),
    reconnect: obj({
      initialDelayMs: def(ms({ min: 10 }), 1_000),
      maxDelayMs: def(ms({ min: 100 }), 60_000),
      factor: def(num({ min: 1, max: 10 }), 2),
    }),
    /** QoS 1 publishes awaiting PUBACK at once; more are refused (mqtt_busy), not queued. */
    maxInFlight: def(int({ min: 1, max: 65535 }), 64),
    /** Inbound payloads above this are dropped and counted (never parsed). */
    maxPayloadBytes: def(bytes({ min: 64, max: 16 * 1024 * 1024 }), 64 * 1024),
    discovery: obj({
      /** Read Home Assistant discovery messages (<prefix>/<component>/.../config) for units, value paths, expire_after. */
      enabled: def(bool(), true),
      prefix: def(topic(), "homeassistant"),
      /** At start, how long to wait for the broker's retained discovery messages before sampling begins. */
      waitMs: def(ms({ max: 60_000 }), 1_500),
      /** Discovery messages processed per second; more are dropped and counted. */
      maxPerSecond: def(int({ min: 1, max: 100_000 }), 200),
    }),
  },
  {
    check(v, ctx) {
      if (v.password !== undefined && v.passwordFile !== undefined)
        ctx.at("passwordFile").fail("give password or passwordFile, not both");
      if ((v.password !== undefined || v.passwordFile !== undefined) && v.username === undefined)
        ctx.at("username").fail("is required with a password");
      if ((v.certFile === undefined) !== (v.keyFile === undefined))
        ctx.at(v.certFile === undefined ? "certFile" : "keyFile").fail("certFile and keyFile go together");
      const tls = v.url.startsWith("mqtts:");
      for (const k of ["caFile", "certFile", "keyFile", "tlsServername"] as const)
        if (v[k] !== undefined && !tls) ctx.at(k).fail("needs an mqtts:// url");
      if (v.reconnect.maxDelayMs < v.reconnect.initialDelayMs)
        ctx.at("reconnect").at("maxDelayMs").fail("must be >= initialDelayMs");
    },
  },
);

/** `board.channels.<id>.mqtt`: where an MQTT sensor's readings come from. */
export const mqttChannelSchema = obj({
  /** The exact topic the device publishes on, e.g. zigbee2mqtt/living_room_sensor. */
  topic: topic(),
  /**
   * Path of the value in a JSON payload (`temperature`). Unset: from Home Assistant discovery's
   * value_template if one names this topic, otherwise the whole payload is the value.
   */
  jsonPath: opt(jsonPath()),
});

/** `board.outputs.<id>.mqtt`: how an MQTT switch is commanded and (optionally) confirmed. */
export const mqttOutputSchema = obj(
  {
    commandTopic: topic(),
    /** Payloads published for on and off; Zigbee2MQTT accepts ON/OFF or {"state":"ON"}. */
    payloadOn: def(str({ minLength: 1, maxLength: 1024 }), "ON"),
    payloadOff: def(str({ minLength: 1, maxLength: 1024 }), "OFF"),
    /** Publish commands retained (rarely wanted: a retained command replays on every device restart). */
    retain: def(bool(), false),
    /** Where the device reports its state; unset: no confirmation (set() resolves on the broker's PUBACK). */
    stateTopic: opt(topic()),
    /** Path of the state in a JSON state payload (Zigbee2MQTT: `state`); unset: the whole payload. */
    stateJsonPath: opt(jsonPath()),
    /** State values meaning on/off; unset: payloadOn/payloadOff (or ON/OFF when those are JSON). */
    stateOn: opt(str({ minLength: 1, maxLength: 256 })),
    stateOff: opt(str({ minLength: 1, maxLength: 256 })),
    /** With a stateTopic: set() fails (mqtt_confirm_timeout) unless the state matches within this time. */
    confirmTimeoutMs: def(ms({ min: 10, max: 600_000 }), 5_000),
  },
  {
    check(v, ctx) {
      for (const k of ["stateJsonPath", "stateOn", "stateOff"] as const)
        if (v[k] !== undefined && v.stateTopic === undefined) ctx.at(k).fail("needs a stateTopic");
    },
  },
);

export type MqttBrokerConfig = Exclude<Infer<typeof mqttBrokerSchema>, symbol>;
export type MqttChannelConfig = Exclude<Infer<typeof mqttChannelSchema>, symbol>;
export type MqttOutputConfig = Exclude<Infer<typeof mqttOutputSchema>, symbol>;
