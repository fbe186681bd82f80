/**
 * One broker connection over MQTT.js, with the agent's rules rather than the library's defaults:
 *
 * - Reconnect with full-jitter exponential backoff (kernel/backoff.ts) instead of MQTT.js's
 *   fixed period. By default each attempt uses a fresh MQTT.js client (clean session): its offline
 *   store is discarded with it, so nothing is re-sent behind our back. Publishes pending when a
 *   connection closes are failed at once (mqtt_publish_failed) and their owner decides (an output
 *   command fails and is reported).
 * - With `persistentSession` (the telemetry mirror) it is the other way round: ONE MQTT.js client
 *   and one in-memory packet store for the connection's whole life, clean session off, and the
 *   broker keeps the session (MQTT 5: sessionExpiryInterval). A QoS 1/2 publish pending when the
 *   connection closes stays pending: MQTT.js re-sends its unfinished flow (same packet id; PUBREL
 *   if PUBREC had arrived) after the reconnect, and the publish settles when that flow completes,
 *   so a QoS 2 publish reaches subscribers once across broker outages. Only stop() fails them.
 * - A bounded in-flight window (maxInFlight): a publish beyond it is refused (mqtt_busy).
 * - Publishing while offline is refused (mqtt_offline), never queued in RAM.
 * - Subscriptions are remembered and re-sent on every connect.
 * - Optional birth message (published on every connect) and will (left with the broker).
 */
import { readFileSync } from "node:fs";
import type { IClientOptions, MqttClient } from "mqtt";
// Runtime values from MQTT.js's own modules, not its index (client-factory.ts says why).
import storeModule from "mqtt/lib/store";
import { Backoff } from "../../kernel/backoff.js";
import { describeError } from "../../kernel/errors.js";
import { type Logger, silentLogger } from "../../kernel/log.js";
import { realTimers, type TimerHandle, type Timers } from "../../kernel/timers.js";
import { TypedEvents, type Unsubscribe } from "../events.js";
import type { MqttBrokerConfig } from "./config.js";
import { commonJsDefault, connectMqttClient } from "./client-factory.js";
import { MqttError } from "./errors.js";
import type { MqttLink, MqttLinkEvents, MqttLinkStats, MqttPublishOptions } from "./link.js";

const Store = commonJsDefault(storeModule);
type Store = InstanceType<typeof Store>;

export interface MqttConnectionOptions {
  config: MqttBrokerConfig;
  /** Used when config.clientId is unset. */
  clientId: string;
  will?: { topic: string; payload: string; retain: boolean; qos: 0 | 1 };
  /**
   * Keep one MQTT session across reconnects (see the header). expiryS: how long the broker keeps
   * the session after a disconnect (MQTT 5 sessionExpiryInterval; MQTT 3.1.1 sessions never expire).
   */
  persistentSession?: { expiryS: number };
  /** Published after every connect (availability "online"). */
  birth?: { topic: string; payload: string; retain: boolean; qos: 0 | 1 };
  timers?: Timers;
  logger?: Logger;
  random?: () => number;
  /** Tests replace MQTT.js; default connectMqttClient (client-factory.ts). */
  connect?: (url: string, opts: IClientOptions) => MqttClient;
}

interface Pending {
  settle(err?: Error): void;
}

export class MqttConnection implements MqttLink {
  readonly url: string;
  private readonly clientId: string;
  private readonly timers: Timers;
  private readonly logger: Logger;
  private readonly backoff: Backoff;
  private readonly events: TypedEvents<MqttLinkEvents>;
  private readonly subscriptions = new Map<string, 0 | 1>();
  private readonly pending = new Set<Pending>();
  private client: MqttClient | undefined;
  /** persistentSession only: MQTT.js's packet stores, kept across reconnects (bounded by maxInFlight). */
  private stores: { incomingStore: Store; outgoingStore: Store } | undefined;
  private retryTimer: TimerHandle | undefined;
  private running = false;
  private isConnected = false;
  private everConnected = false;
  private secrets: Pick<IClientOptions, "password" | "ca" | "cert" | "key"> = {};
  private readonly counters = { connects: 0, disconnects: 0, messagesIn: 0, published: 0, publishFailures: 0, busy: 0 };
  private lastError: MqttLinkStats["lastError"];

  constructor(private readonly options: MqttConnectionOptions) {
    this.url = options.config.url;
    this.clientId = options.config.clientId ?? options.clientId;
    this.timers = options.timers ?? realTimers;
    this.logger = (options.logger ?? silentLogger).child({ component: "mqtt", broker: this.url });
    this.backoff = new Backoff(options.config.reconnect, options.random);
    this.events = new TypedEvents((err, event) =>
      this.logger.error("mqtt listener threw", { event: String(event), error: describeError(err) }),
    );
  }

  get connected(): boolean {
    return this.isConnected;
  }

  on<K extends keyof MqttLinkEvents>(event: K, listener: (payload: MqttLinkEvents[K]) => void): Unsubscribe {
    return this.events.on(event, listener);
  }

  /** Reads the credential/TLS files (throws MqttError mqtt_config if one is unreadable), then connects in the background. */
  start(): void {
    if (this.running) return;
    this.secrets = this.readSecrets();
    this.running = true;
    this.attempt();
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.retryTimer?.cancel();
    this.retryTimer = undefined;
    const client = this.client;
    this.client = undefined;
    this.stores = undefined;
    this.failPending(new MqttError("mqtt_offline", "connection stopped", { broker: this.url }));
    const wasConnected = this.isConnected;
    this.isConnected = false;
    // A persistent client between attempts has no socket to say goodbye on.
    if (client) await this.dispose(client, !wasConnected && this.options.persistentSession !== undefined);
  }

  subscribe(topic: string, qos: 0 | 1): void {
    this.subscriptions.set(topic, qos);
    if (this.isConnected && this.client) this.sendSubscriptions(this.client, [topic]);
  }

  publish(topic: string, payload: string | Buffer, opts: MqttPublishOptions): Promise<void> {
    const client = this.client;
    if (!this.isConnected || !client)
      return Promise.reject(new MqttError("mqtt_offline", `not connected to ${this.url}`, { broker: this.url, topic }));
    if (this.pending.size >= this.options.config.maxInFlight) {
      this.counters.busy++;
      return Promise.reject(
        new MqttError("mqtt_busy", `${this.pending.size} publishes already wait for the broker`, {
          broker: this.url,
          topic,
          maxInFlight: this.options.config.maxInFlight,
        }),
      );
    }
    return new Promise<void>((resolve, reject) => {
      let done = false;
      const entry: Pending = {
        settle: (err) => {
          if (done) return;
          done = true;
          this.pending.delete(entry);
          if (err) {
            this.counters.publishFailures++;
            reject(
              err instanceof MqttError
                ? err
                : new MqttError(
                    "mqtt_publish_failed",
                    `publish to ${topic} failed: ${err.message}`,
                    {
                      broker: this.url,
                      topic,
                    },
                    { cause: err },
                  ),
            );
          } else {
            this.counters.published++;
            resolve();
          }
        },
      };
      this.pending.add(entry);
      client.publish(topic, payload, { qos: opts.qos, retain: opts.retain }, (err) => entry.settle(err ?? undefined));
    });
  }

  stats(): MqttLinkStats {
    return {
      url: this.url,
      clientId: this.clientId,
      connected: this.isConnected,
      ...this.counters,
      inFlight: this.pending.size,
      ...(this.lastError ? { lastError: this.lastError } : {}),
    };
  }

  // ----------------------------------------------------------------

  private readSecrets(): Pick<IClientOptions, "password" | "ca" | "cert" | "key"> {
    const c = this.options.config;
    const read = (key: string, path: string | undefined): Buffer | undefined => {
      if (path === undefined) return undefined;
      try {
        return readFileSync(path);
      } catch (err) {
        throw new MqttError("mqtt_config", `cannot read ${key} ${path}: ${(err as Error).message}`, {
          broker: this.url,
          key,
          path,
        });
      }
    };
    const out: Pick<IClientOptions, "password" | "ca" | "cert" | "key"> = {};
    const passwordFile = read("passwordFile", c.passwordFile);
    if (c.password !== undefined) out.password = c.password;
    else if (passwordFile) out.password = passwordFile.toString("utf8").replace(/\r?\n$/, "");
    const ca = read("caFile", c.caFile);
    const cert = read("certFile", c.certFile);
    const key = read("keyFile", c.keyFile);
    if (ca) out.ca = ca;
    if (cert) out.cert = cert;
    if (key) out.key = key;
    return out;
  }

  private clientOptions(): IClientOptions {
    const c = this.options.config;
    const persistent = this.options.persistentSession;
    const opts: IClientOptions = {
      clientId: this.clientId,
      // Persistent: always resume, even on the first connect (mosquitto 2.0 does not save a session
      // that began with clean start, whatever its expiry). A session left by an earlier run may hold
      // packet ids we no longer know; mosquitto treats a reused id with a different message as new.
      clean: persistent === undefined,
      // We reconnect ourselves (backoff with jitter): a fresh client each time, or client.reconnect() when persistent.
      reconnectPeriod: 0,
      resubscribe: false,
      queueQoSZero: false,
      connectTimeout: c.connectTimeoutMs,
      keepalive: c.keepaliveS,
      protocolVersion: c.protocolVersion as 4 | 5,
      // mqtt-packet otherwise builds, at the first packet written, a cache of 65,536 two-byte
      // Buffers for packet ids and lengths: ~6 MiB of heap (heap snapshot, bench/memory), to save
      // one tiny allocation per number at a device's few packets a second.
      writeCache: false,
      ...this.secrets,
    };
    if (c.username !== undefined) opts.username = c.username;
    if (c.tlsServername !== undefined) opts.servername = c.tlsServername;
    if (c.protocolVersion === 5) {
      // Lets the broker drop oversized packets before they reach us; the slack covers topic and properties.
      opts.properties = { maximumPacketSize: c.maxPayloadBytes + 4096 };
      // MQTT 5 ends a session with its connection unless told otherwise.
      if (persistent) opts.properties.sessionExpiryInterval = persistent.expiryS;
    }
    if (this.stores) Object.assign(opts, this.stores);
    if (this.options.will) opts.will = { ...this.options.will };
    return opts;
  }

  private attempt(): void {
    this.retryTimer = undefined;
    if (!this.running) return;
    if (this.options.persistentSession && this.client && this.stores) {
      // Same client, same stores: MQTT.js re-sends its unfinished QoS 1/2 flows once connected.
      // (reconnect() without stores would replace them with empty ones.)
      try {
        this.client.reconnect({ ...this.stores });
      } catch (err) {
        this.noteError(err as Error);
        this.scheduleRetry();
      }
      return;
    }
    const connect = this.options.connect ?? connectMqttClient;
    if (this.options.persistentSession) this.stores = { incomingStore: new Store(), outgoingStore: new Store() };
    let client: MqttClient;
    try {
      client = connect(this.url, this.clientOptions());
    } catch (err) {
      this.noteError(err as Error);
      this.scheduleRetry();
      return;
    }
    this.client = client;
    client.on("connect", (connack) => {
      if (this.client !== client) return;
      this.isConnected = true;
      this.backoff.reset();
      this.counters.connects++;
      const reconnect = this.everConnected;
      this.everConnected = true;
      this.logger.info("mqtt connected", { clientId: this.clientId, reconnect });
      if (this.options.persistentSession && reconnect && !connack.sessionPresent)
        this.logger.warn("the broker lost this client's session (restart without persistence, or it expired)", {
          clientId: this.clientId,
        });
      this.sendSubscriptions(client, [...this.subscriptions.keys()]);
      const birth = this.options.birth;
      if (birth)
        this.publish(birth.topic, birth.payload, { qos: birth.qos, retain: birth.retain }).catch((err: unknown) =>
          this.logger.warn("birth message not published", { error: describeError(err) }),
        );
      this.events.emit("connect", { reconnect });
    });
    if (this.options.persistentSession)
      // Runs before MQTT.js handles the CONNACK (and re-sends its store). If the broker lost our
      // session, a re-sent PUBREL would be answered PUBCOMP for a message it no longer has: a loss.
      // So the unfinished flows are failed instead and their owner re-sends them (at least once).
      client.on("packetreceive", (packet) => {
        if (this.client !== client || packet.cmd !== "connack" || packet.sessionPresent) return;
        for (const id of Object.keys(client.outgoing)) client.removeOutgoingMessage(Number(id));
      });
    client.on("message", (topic, payload, packet) => {
      if (this.client !== client) return;
      this.counters.messagesIn++;
      this.events.emit("message", { topic, payload, retain: packet.retain === true });
    });
    client.on("error", (err) => {
      if (this.client === client) this.noteError(err);
    });
    client.on("close", () => {
      if (this.client !== client) return;
      const wasConnected = this.isConnected;
      this.isConnected = false;
      if (!this.options.persistentSession) {
        this.client = undefined;
        this.failPending(
          new MqttError("mqtt_publish_failed", "connection closed before the broker acknowledged", {
            broker: this.url,
          }),
        );
        void this.dispose(client, true);
      }
      if (wasConnected) {
        this.counters.disconnects++;
        this.logger.warn("mqtt connection lost", { lastError: this.lastError?.message });
        this.events.emit("offline", {});
      }
      this.scheduleRetry();
    });
  }

  private sendSubscriptions(client: MqttClient, topics: string[]): void {
    if (topics.length === 0) return;
    const map: Record<string, { qos: 0 | 1 }> = {};
    for (const t of topics) map[t] = { qos: this.subscriptions.get(t) ?? 0 };
    client.subscribe(map, (err, granted) => {
      if (err) {
        this.noteError(err);
        return;
      }
      // 128 (0x80) and above: refused by the broker (ACL). Say which, once per connect.
      for (const g of granted ?? [])
        if (g.qos >= 128) this.logger.error("broker refused a subscription", { topic: g.topic, code: g.qos });
    });
  }

  private scheduleRetry(): void {
    if (!this.running || this.retryTimer) return;
    const delay = this.backoff.next();
    this.logger.debug("mqtt reconnect scheduled", { delayMs: delay, attempt: this.backoff.attempts });
    this.retryTimer = this.timers.setTimeout(() => this.attempt(), delay);
  }

  private failPending(err: MqttError): void {
    for (const p of [...this.pending]) p.settle(err);
  }

  private noteError(err: Error): void {
    // Refused connections repeat every attempt: one line per distinct message is enough at info.
    if (this.lastError?.message !== err.message) this.logger.warn("mqtt error", { error: describeError(err) });
    this.lastError = { message: err.message, at: this.timers.now() };
  }

  /** Ends a client for good; a late 'error' from its socket must not become an uncaught exception. */
  private dispose(client: MqttClient, force: boolean): Promise<void> {
    client.removeAllListeners();
    client.on("error", () => undefined);
    return new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        client.end(true);
        resolve();
      }, 1000);
      client.end(force, {}, () => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}
