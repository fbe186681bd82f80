/**
 * The fleet's subscriber: one account (an operator, so the devices keep it a member of their
 * whitelisted nodes) subscribed to every device's telemetry node. It accounts for every reading
 * by (device, seq): how many arrived, which are missing between the first and the last, which came
 * in two different items (a duplicate), and how long each took from sample time to here.
 *
 * Notifications sent while the collector itself was offline (a server restart) are not queued by
 * the server for a full JID. So whenever its session comes back without resuming, the collector
 * catches up as any subscriber should: it reads the items every node holds (`fetchItems`; items
 * already seen are skipped by id). Without that, readings published while it was logging in again
 * would count as lost once the nodes had trimmed them (seen at 1,000 devices after a restart).
 */
import { Element } from "ltx";
import { decodeReadings } from "../agent/telemetry/codec.js";
import { NS_PUBSUB } from "../agent/telemetry/pubsub.js";
import { forEachBounded } from "../kernel/bounded.js";
import { AgentError, describeError } from "../kernel/errors.js";
import { type Logger, silentLogger } from "../kernel/log.js";
import type { XmppSession } from "../xmpp/session.js";

const NS_EVENT = "http://jabber.org/protocol/pubsub#event";
/** Refusals of a subscription that a device's first publishes make go away. */
const SETTLING = new Set(["item-not-found", "not-allowed", "forbidden"]);

/** Per-device accounting of sequence numbers. */
class DeviceSeqs {
  /** Every seq seen, with the item it came in (to tell a repeated item from a duplicate reading). */
  private readonly itemOf = new Map<number, string>();
  private readonly items = new Set<string>();
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;
  duplicates = 0;
  repeatedItems = 0;

  /** False when the item was seen before; notified again live, it was a re-publish of the same batch (harmless). */
  addItem(id: string, live: boolean): boolean {
    if (this.items.has(id)) {
      if (live) this.repeatedItems++;
      return false;
    }
    this.items.add(id);
    return true;
  }

  addSeq(seq: number, item: string): void {
    const had = this.itemOf.get(seq);
    if (had !== undefined) {
      if (had !== item) this.duplicates++;
      return;
    }
    this.itemOf.set(seq, item);
    if (seq < this.min) this.min = seq;
    if (seq > this.max) this.max = seq;
  }

  get count(): number {
    return this.itemOf.size;
  }

  /** Seqs between the first and the last seen that never came. */
  missing(): number[] {
    const out: number[] = [];
    for (let s = this.min; s <= this.max; s++) if (!this.itemOf.has(s)) out.push(s);
    return out;
  }
}

export interface CollectorReport {
  devices: number;
  /** Devices from which at least one reading arrived. */
  reporting: number;
  readings: number;
  /** Between each device's first and last seq seen, the ones that never arrived (lost). */
  missing: number;
  /** A few of them, for the error message: device#seq. */
  missingExamples: string[];
  /** Readings that arrived in two different items. */
  duplicates: number;
  /** Items notified again with the same id (an at-least-once re-publish: not a duplicate reading). */
  repeatedItems: number;
  /** Sample time to arrival here, over every reading received live. */
  latencyMs: { p50: number; p99: number; max: number; samples: number };
  /** Payloads that did not decode. */
  badPayloads: number;
  /** Catch-ups after the collector's own session came back without resuming, and how many failed. */
  catchUps: number;
  catchUpFailures: number;
}

export class CollectorError extends AgentError {}

export interface CollectorOptions {
  session: XmppSession;
  service: string;
  /** Node of device `id`: default `devices/<id>/telemetry`. */
  nodeOf?: (id: string) => string;
  log?: Logger;
  now?: () => number;
}

export class TelemetryCollector {
  private readonly byDevice = new Map<string, DeviceSeqs>();
  private readonly deviceOfNode = new Map<string, string>();
  private latencies: number[] = [];
  private badPayloads = 0;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly nodeOf: (id: string) => string;
  private catchUps = 0;
  private catchUpFailures = 0;
  private catchingUp: Promise<void> = Promise.resolve();
  private readonly onStanza = (el: Element) => this.handle(el);
  private readonly onOnline = (info: { resumed: boolean }) => {
    if (!info.resumed && this.byDevice.size > 0) this.catchUp();
  };

  constructor(private readonly options: CollectorOptions) {
    this.log = options.log ?? silentLogger;
    this.now = options.now ?? Date.now;
    this.nodeOf = options.nodeOf ?? ((id) => `devices/${id}/telemetry`);
    options.session.on("stanza", this.onStanza);
    options.session.on("online", this.onOnline);
  }

  /** Stops listening (the session is the caller's). */
  close(): void {
    this.options.session.off("stanza", this.onStanza);
    this.options.session.off("online", this.onOnline);
  }

  /** Resolves once every catch-up started so far has ended. */
  settled(): Promise<void> {
    return this.catchingUp;
  }

  private catchUp(): void {
    this.catchUps++;
    const ids = [...this.byDevice.keys()];
    this.catchingUp = this.catchingUp
      .then(() => this.fetchItems(ids, { concurrency: 32 }))
      .catch((err: unknown) => {
        // Counted and logged: the report then says its "missing" may include readings it could not read back.
        this.catchUpFailures++;
        this.log.warn("collector catch-up failed", { error: describeError(err) });
      });
  }

  /**
   * Subscribes this session's full JID (it sends no presence, so a bare-JID subscription would go
   * to no resource) to every device's node, `concurrency` requests at a time. A node that does not exist
   * yet (the device has not published), or does not list us as a member yet, is retried until `timeoutMs`.
   * Once subscribed, it reads the items the node holds (a reading published during the subscribe
   * counts then, notified or not).
   */
  async subscribe(ids: string[], opts: { concurrency?: number; timeoutMs?: number } = {}): Promise<void> {
    for (const id of ids) {
      this.deviceOfNode.set(this.nodeOf(id), id);
      if (!this.byDevice.has(id)) this.byDevice.set(id, new DeviceSeqs());
    }
    const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
    const jid = this.options.session.jid;
    if (!jid) throw new CollectorError("collector_offline", "the collector's session is not online");
    await forEachBounded(ids, opts.concurrency ?? 16, async (id) => {
      for (;;) {
        const iq = new Element("iq", { type: "set", to: this.options.service });
        iq.c("pubsub", { xmlns: NS_PUBSUB }).c("subscribe", { node: this.nodeOf(id), jid });
        try {
          await this.options.session.request(iq);
        } catch (err) {
          // Not created yet, or created but its owner has not yet made us a member (whitelist:
          // ejabberd says not-allowed, Prosody forbidden): both settle within a publish or two.
          const condition = String((err as AgentError).context?.condition);
          if (!SETTLING.has(condition) || Date.now() > deadline)
            throw new CollectorError(
              "collector_subscribe_failed",
              `cannot subscribe to ${this.nodeOf(id)}: ${(err as Error).message}`,
              { device: id, error: describeError(err) },
            );
          await new Promise((r) => setTimeout(r, 500));
          continue;
        }
        // A subscriber is notified of what is published after its subscription took effect; what
        // a device published meanwhile can reach nobody. Seen on the two-node ejabberd cluster with
        // debug logging (a slower server): readings of a device's first seconds counted missing
        // while pubsub held them. So read what the node holds now.
        await this.fetchItems([id]);
        return;
      }
    });
  }

  /** Reads the items each node still holds (after the collector was offline); counts them like live ones. */
  async fetchItems(ids: string[], opts: { concurrency?: number } = {}): Promise<void> {
    await forEachBounded(ids, opts.concurrency ?? 16, async (id) => {
      const iq = new Element("iq", { type: "get", to: this.options.service });
      iq.c("pubsub", { xmlns: NS_PUBSUB }).c("items", { node: this.nodeOf(id) });
      const res = await this.options.session.request(iq);
      const items = res.getChild("pubsub", NS_PUBSUB)?.getChild("items");
      for (const item of items?.getChildren("item") ?? []) this.item(id, item, false);
    });
  }

  report(): CollectorReport {
    let readings = 0;
    let missing = 0;
    let duplicates = 0;
    let repeatedItems = 0;
    let reporting = 0;
    const missingExamples: string[] = [];
    for (const [id, d] of this.byDevice) {
      readings += d.count;
      if (d.count > 0) reporting++;
      duplicates += d.duplicates;
      repeatedItems += d.repeatedItems;
      const m = d.missing();
      missing += m.length;
      for (const s of m.slice(0, 3)) if (missingExamples.length < 10) missingExamples.push(`${id}#${s}`);
    }
    const sorted = Float64Array.from(this.latencies).sort();
    const at = (q: number) =>
      sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
    return {
      devices: this.byDevice.size,
      reporting,
      readings,
      missing,
      missingExamples,
      duplicates,
      repeatedItems,
      latencyMs: {
        p50: at(0.5),
        p99: at(0.99),
        max: sorted.length ? sorted[sorted.length - 1]! : Number.NaN,
        samples: sorted.length,
      },
      badPayloads: this.badPayloads,
      catchUps: this.catchUps,
      catchUpFailures: this.catchUpFailures,
    };
  }

  /** The last seq seen from each device (the benchmark waits for the fleet's final readings). */
  lastSeq(id: string): number | undefined {
    const d = this.byDevice.get(id);
    return d && d.count > 0 ? d.max : undefined;
  }

  /** Forgets latencies measured so far (e.g. after a warm-up), keeping the seq accounting. */
  resetLatencies(): void {
    this.latencies = [];
  }

  private handle(el: Element): void {
    if (el.name !== "message") return;
    const items = el.getChild("event", NS_EVENT)?.getChild("items");
    const node = items?.attrs.node as string | undefined;
    if (!items || node === undefined) return;
    const id = this.deviceOfNode.get(node);
    if (id === undefined) return;
    for (const item of items.getChildren("item")) this.item(id, item, true);
  }

  private item(id: string, item: Element, live: boolean): void {
    const d = this.byDevice.get(id);
    const itemId = item.attrs.id as string | undefined;
    const payload = item.getChildElements()[0];
    if (!d || itemId === undefined || !payload) return;
    if (!d.addItem(itemId, live)) return;
    try {
      const now = this.now();
      for (const r of decodeReadings(payload).readings) {
        d.addSeq(r.seq, itemId);
        if (live && !r.historical) this.latencies.push(now - r.timestamp);
      }
    } catch (err) {
      this.badPayloads++;
      this.log.warn("telemetry item did not decode", { device: id, item: itemId, error: describeError(err) });
    }
  }
}
