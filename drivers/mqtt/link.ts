/**
 * The port between MQTT devices (hub.ts) or the telemetry mirror and a broker connection. The
 * real one is MqttConnection (connection.ts, MQTT.js); unit tests use FakeMqttLink (testing.ts).
 */
import type { EventSource } from "../events.js";

export interface MqttMessage {
  topic: string;
  payload: Buffer;
  retain: boolean;
}

export interface MqttLinkEvents {
  /** Connected (again); subscriptions are already re-sent. */
  connect: { reconnect: boolean };
  /** The connection closed; pending publishes were failed with mqtt_publish_failed. */
  offline: { error?: Error };
  message: MqttMessage;
}

export interface MqttPublishOptions {
  /** 2 (exactly once) is meant for a connection with persistentSession (the telemetry mirror). */
  qos: 0 | 1 | 2;
  retain: boolean;
}

export interface MqttLinkStats {
  url: string;
  clientId: string;
  connected: boolean;
  connects: number;
  disconnects: number;
  messagesIn: number;
  published: number;
  publishFailures: number;
  /** Publishes refused at once because maxInFlight were waiting. */
  busy: number;
  inFlight: number;
  lastError?: { message: string; at: number };
}

export interface MqttLink extends EventSource<MqttLinkEvents> {
  readonly connected: boolean;
  readonly url: string;
  /** Connects in the background (retrying with backoff); never rejects for an absent broker. */
  start(): void;
  stop(): Promise<void>;
  /** Adds a subscription kept across reconnects. */
  subscribe(topic: string, qos: 0 | 1): void;
  /**
   * Resolves on PUBACK (QoS 1), PUBCOMP (QoS 2) or once written (QoS 0). Rejects with MqttError: mqtt_offline,
   * mqtt_busy (nothing sent), mqtt_publish_failed (closed before PUBACK, or refused).
   */
  publish(topic: string, payload: string | Buffer, opts: MqttPublishOptions): Promise<void>;
  stats(): MqttLinkStats;
}
