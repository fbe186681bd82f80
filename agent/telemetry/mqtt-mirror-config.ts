/**
 * The `mqttMirror` config section: the same readings the agent publishes to XMPP, also published
 * to an MQTT broker (docs/mqtt.md). Off by default. The broker connection schema is shared with
 * `board.mqtt` (drivers/mqtt/config.ts: schema only, no driver code runs from here).
 */
import { mqttBrokerSchema } from "../../drivers/mqtt/config.js";
import { bool, bytes, def, int, ms, obj, opt, str } from "../../kernel/schema-dsl.js";
import { overflowPolicySchema, storeKindSchema } from "./config.js";

export const mqttMirrorConfigSchema = obj(
  {
    enabled: def(bool(), false),
    broker: opt(mqttBrokerSchema),
    /** Topics: <topicPrefix><device id>/channel/<channel id> and <topicPrefix><device id>/availability. */
    // biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is exactly what a topic may not hold
    topicPrefix: def(str({ pattern: /^[^#+\u0000]{0,200}$/, patternHint: "a topic prefix without wildcards" }), "iot/"),
    /** Keep each channel's last value retained on the broker (new subscribers see it at once). */
    retain: def(bool(), true),
    /** Readings published (QoS 2) whose flow has not completed (PUBCOMP) at once; they survive reconnects. */
    inFlight: def(int({ min: 1, max: 1024 }), 32),
    /**
     * MQTT 5: how long the broker keeps the mirror's session (its unfinished QoS 2 flows) after the
     * link drops. An outage longer than this may duplicate the readings in flight when it began.
     */
    sessionExpiryS: def(int({ min: 10, max: 4_294_967_295 }), 86_400),
    spool: obj({
      /** The mirror's own spool (<device.dataDir>/telemetry/mqtt-spool for "file"); neither uplink waits for the other. */
      store: storeKindSchema,
      maxBytes: def(bytes({ min: 64 * 1024 }), 16 * 1024 * 1024),
      overflow: overflowPolicySchema,
    }),
    retry: obj({
      /** After a refused publish while connected (ACL, quota); a lost connection waits for the reconnect instead. */
      initialDelayMs: def(ms({ min: 10 }), 1000),
      maxDelayMs: def(ms({ min: 100 }), 60_000),
    }),
  },
  {
    check(v, ctx) {
      if (v.enabled && v.broker === undefined) ctx.at("broker").fail("is required when the mirror is enabled");
      if (v.retry.maxDelayMs < v.retry.initialDelayMs)
        ctx.at("retry").at("maxDelayMs").fail("must be >= initialDelayMs");
    },
  },
);

export type MqttMirrorConfig = Exclude<ReturnType<typeof mqttMirrorConfigSchema.parse>, symbol>;
