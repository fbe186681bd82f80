/**
 * Bench child for @xmpp/client 0.14 (default options, bundled like ours): the same job as
 * bench/telemetry/ours.ts written the way an @xmpp/client user would write it. One pubsub publish
 * IQ per item carrying the same <readings/> payload and publish-options as the agent sends, through
 * `iqCaller.request()`, each awaited, with the same number of requests in flight.
 *
 * It keeps nothing on disk and has no store-and-forward: the readings of a batch live only in the
 * request, so it is compared with our memory spool first.
 * Trust: @xmpp/client takes no per-connection TLS options, so the parent sets NODE_EXTRA_CA_CERTS.
 */
import { client, type XmppClient, xml } from "@xmpp/client";
import type { Element } from "ltx";
import { BenchError } from "../lib/errors.js";
import { type PublishDriver, runTelemetryChild } from "./child.js";
import type { TelemetryJob } from "./protocol.js";
import { type BenchReading, benchReadings } from "./readings.js";

const NS_SM = "urn:xmpp:sm:3";
const NS_PUBSUB = "http://jabber.org/protocol/pubsub";
const NS_DATA = "jabber:x:data";
const NS_TELEMETRY = "urn:xmpp-iot-agent:telemetry:0";

/** @xmpp/client's IQ caller (0.14: @xmpp/iq/caller.js); bench/types declares the rest of the client. */
interface IqCaller {
  request(stanza: Element, timeoutMs?: number): Promise<Element>;
}

function form(formType: string, maxItems: number): Element {
  const field = (v: string, value: string, type?: string) =>
    xml("field", type ? { var: v, type } : { var: v }, xml("value", {}, value));
  return xml(
    "x",
    { xmlns: NS_DATA, type: "submit" },
    field("FORM_TYPE", formType, "hidden"),
    field("pubsub#persist_items", "true"),
    field("pubsub#max_items", String(maxItems)),
    field("pubsub#access_model", "open"),
  );
}

/** The agent's payload format (docs/protocol.md), built with @xmpp/xml. */
function readingsPayload(device: string, rs: BenchReading[]): Element {
  return xml(
    "readings",
    { xmlns: NS_TELEMETRY, device, first: String(rs[0]!.seq), last: String(rs[rs.length - 1]!.seq) },
    ...rs.map((r) =>
      xml("numeric", {
        seq: String(r.seq),
        name: r.channelId,
        value: String(r.value),
        unit: r.unit,
        timestamp: new Date(r.timestamp).toISOString(),
        momentary: "true",
      }),
    ),
  );
}

class XmppJsDriver implements PublishDriver {
  private readonly xmpp: XmppClient;
  private nodeReady = false;

  constructor(private readonly job: TelemetryJob) {
    this.xmpp = client({
      service: `xmpp://${job.host}:${job.port}`,
      domain: job.domain,
      username: job.user,
      password: job.password,
      resource: job.resource,
    });
    // Without a listener an 'error' event would crash the child.
    this.xmpp.on("error", (err: Error) => process.stderr.write(`[xmppjs] error: ${err.message}\n`));
    if (job.noDelay) {
      // Diagnostic only: on "connect" its socket is still the plain net.Socket (STARTTLS wraps it
      // later); the option stays on the file descriptor under TLS.
      this.xmpp.on("connect", () =>
        (this.xmpp as unknown as { socket?: { setNoDelay?: (on: boolean) => void } }).socket?.setNoDelay?.(true),
      );
    }
  }

  private get iq(): IqCaller {
    return (this.xmpp as unknown as { iqCaller: IqCaller }).iqCaller;
  }

  async connect(): Promise<void> {
    // Online is at bind; stream management is enabled just after: wait for it, as ours does.
    const enabled = new Promise<void>((resolve) => {
      const onNonza = (el: Element) => {
        if (el.name === "enabled" && el.attrs.xmlns === NS_SM) {
          this.xmpp.off("nonza", onNonza);
          resolve();
        }
      };
      this.xmpp.on("nonza", onNonza);
    });
    await this.xmpp.start();
    await enabled;
  }

  private publishIq(rs: BenchReading[]): Element {
    return xml(
      "iq",
      { type: "set", to: this.job.service },
      xml(
        "pubsub",
        { xmlns: NS_PUBSUB },
        xml(
          "publish",
          { node: this.job.node },
          xml("item", { id: `r-${rs[0]!.seq}-${rs[rs.length - 1]!.seq}` }, readingsPayload(this.job.device, rs)),
        ),
        xml("publish-options", {}, form("http://jabber.org/protocol/pubsub#publish-options", this.job.maxItems)),
      ),
    );
  }

  private async ensureNode(): Promise<void> {
    if (this.nodeReady) return;
    const create = xml(
      "iq",
      { type: "set", to: this.job.service },
      xml(
        "pubsub",
        { xmlns: NS_PUBSUB },
        xml("create", { node: this.job.node }),
        xml("configure", {}, form("http://jabber.org/protocol/pubsub#node_config", this.job.maxItems)),
      ),
    );
    try {
      await this.iq.request(create);
    } catch (err) {
      if ((err as { condition?: string }).condition !== "conflict") throw err;
    }
    this.nodeReady = true;
  }

  async publish(firstSeq: number, count: number): Promise<void> {
    await this.ensureNode();
    const batch = this.job.batch;
    const end = firstSeq + count;
    let next = firstSeq;
    // `inFlight` workers, each sending its next item when the previous one's result arrived.
    const worker = async () => {
      while (next < end) {
        const rs = benchReadings(next, batch);
        next += batch;
        await this.iq.request(this.publishIq(rs));
      }
    };
    await Promise.all(Array.from({ length: this.job.inFlight }, worker));
  }

  iqBytes(firstSeq: number): number {
    return Buffer.byteLength(this.publishIq(benchReadings(firstSeq, this.job.batch)).toString());
  }

  async stop(): Promise<void> {
    await this.xmpp.stop();
  }
}

await runTelemetryChild((job) => {
  if (job.spool && job.spool.store !== "memory")
    throw new BenchError("bench_args", "the @xmpp/client child has no spool to configure");
  return new XmppJsDriver(job);
});
