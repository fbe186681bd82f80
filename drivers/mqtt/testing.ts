/** An in-memory MqttLink for unit tests: records publishes, lets the test deliver messages and drop the link. */
import { TypedEvents, type Unsubscribe } from "../events.js";
import { MqttError } from "./errors.js";
import type { MqttLink, MqttLinkEvents, MqttLinkStats, MqttPublishOptions } from "./link.js";

export class FakeMqttLink implements MqttLink {
  readonly url = "mqtt://fake:1883";
  connected = false;
  started = false;
  readonly subscriptions = new Map<string, 0 | 1>();
  readonly published: Array<{ topic: string; payload: string; opts: MqttPublishOptions }> = [];
  /** Decides each publish: resolve (default), or an error to reject with. */
  policy: (topic: string, payload: string) => Error | undefined = () => undefined;
  /** Called after each publish is recorded (a test device answers here). */
  onPublish: ((topic: string, payload: string) => void) | undefined;
  private readonly events = new TypedEvents<MqttLinkEvents>();

  on<K extends keyof MqttLinkEvents>(event: K, listener: (payload: MqttLinkEvents[K]) => void): Unsubscribe {
    return this.events.on(event, listener);
  }
  start(): void {
    this.started = true;
  }
  async stop(): Promise<void> {
    this.started = false;
    this.connected = false;
  }
  subscribe(topic: string, qos: 0 | 1): void {
    this.subscriptions.set(topic, qos);
  }
  async publish(topic: string, payload: string | Buffer, opts: MqttPublishOptions): Promise<void> {
    if (!this.connected) throw new MqttError("mqtt_offline", "fake link offline", { topic });
    const text = payload.toString();
    this.published.push({ topic, payload: text, opts });
    const err = this.policy(topic, text);
    if (err) throw err;
    this.onPublish?.(topic, text);
  }
  stats(): MqttLinkStats {
    return {
      url: this.url,
      clientId: "fake",
      connected: this.connected,
      connects: 0,
      disconnects: 0,
      messagesIn: 0,
      published: this.published.length,
      publishFailures: 0,
      busy: 0,
      inFlight: 0,
    };
  }

  /** Test side: connect / disconnect. */
  setConnected(up: boolean): void {
    if (up === this.connected) return;
    this.connected = up;
    if (up) this.events.emit("connect", { reconnect: false });
    else this.events.emit("offline", {});
  }
  /** Test side: a message arrives from the broker. */
  deliver(topic: string, payload: string | Buffer, retain = false): void {
    this.events.emit("message", { topic, payload: Buffer.isBuffer(payload) ? payload : Buffer.from(payload), retain });
  }
}
