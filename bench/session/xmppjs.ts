/**
 * Bench child for @xmpp/client 0.14, default options. Run as an esbuild bundle of this file with
 * @xmpp/* inside, and as a bundle that leaves every package external (plain `import` from
 * node_modules, i.e. how an app that does not bundle loads it).
 *
 * Trust: @xmpp/client takes no per-connection TLS options, so the parent sets NODE_EXTRA_CA_CERTS.
 * SM acknowledgement: its stream management keeps unacked stanzas in `outbound_q` and emits `ack`
 * once per stanza as the server's <a h/> arrives; the burst is done when all of ours were acked.
 * Its `online` fires at resource binding, before <enabled/>; connect() waits for <enabled/> too,
 * so both clients are timed to the same point (bound and SM on).
 */
import { client, type XmppClient, xml } from "@xmpp/client";
import type { Element } from "ltx";
import { BenchError } from "../lib/errors.js";
import { absoluteNow } from "../lib/stats.js";
import { type BenchClient, messageBody, type ResumeTiming, runChild } from "./child.js";
import type { ChildJob } from "./protocol.js";

const NS_SM = "urn:xmpp:sm:3";

class XmppJsClient implements BenchClient {
  private readonly xmpp: XmppClient;
  private readonly sink: string;
  private drops = 0;
  private stopping = false;

  constructor(job: ChildJob) {
    this.sink = job.sink;
    this.xmpp = client({
      service: `xmpp://${job.host}:${job.port}`,
      domain: job.domain,
      username: job.user,
      password: job.password,
      resource: job.resource,
    });
    this.xmpp.on("disconnect", () => {
      if (!this.stopping) this.drops++;
    });
    // Without a listener an 'error' event would crash the child; resets make ECONNRESET expected.
    this.xmpp.on("error", (err: Error) => {
      if (!this.stopping) process.stderr.write(`[xmppjs] error: ${err.message}\n`);
    });
  }

  get linkDrops(): number {
    return this.drops;
  }

  async connect(): Promise<void> {
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
    // sm.enabled is set after the enable procedure's promise settles, a few microtasks later.
    await new Promise((r) => setImmediate(r));
    if (!this.xmpp.streamManagement.enabled) throw new BenchError("bench_login", "@xmpp/client: SM not enabled");
  }

  sendBurst(count: number, idPrefix: string): Promise<void> {
    const sm = this.xmpp.streamManagement;
    if (sm.outbound_q.length !== 0)
      return Promise.reject(new BenchError("bench_state", `${sm.outbound_q.length} stanzas still unacked`));
    return new Promise((resolve, reject) => {
      let acked = 0;
      const done = (err?: Error) => {
        sm.off("ack", onAck);
        sm.off("fail", onFail);
        if (err) reject(err);
        else resolve();
      };
      const onAck = () => {
        if (++acked === count) done();
      };
      const onFail = () => done(new BenchError("bench_sm_fail", "@xmpp/client reported a stanza as failed"));
      sm.on("ack", onAck);
      sm.on("fail", onFail);
      for (let i = 0; i < count; i++) {
        const m = xml(
          "message",
          { to: this.sink, type: "headline", id: `${idPrefix}${i}` },
          xml("body", {}, messageBody(i)),
        );
        this.xmpp.send(m).catch((err: Error) => done(err));
      }
    });
  }

  nextOnline(): Promise<ResumeTiming> {
    const { reconnect, streamManagement: sm } = this.xmpp;
    return new Promise((resolve) => {
      let attemptAt = Number.NaN;
      const onAttempt = () => {
        attemptAt = absoluteNow();
      };
      const finish = (resumed: boolean) => {
        const onlineAt = absoluteNow();
        reconnect.off("reconnecting", onAttempt);
        sm.off("resumed", onResumed);
        this.xmpp.off("online", onFresh);
        resolve({ attemptAt, onlineAt, resumed });
      };
      const onResumed = () => finish(true);
      // A failed resumption ends in a fresh session, which does emit 'online'.
      const onFresh = () => finish(false);
      reconnect.on("reconnecting", onAttempt);
      sm.on("resumed", onResumed);
      this.xmpp.on("online", onFresh);
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.xmpp.stop();
  }
}

await runChild((job) => new XmppJsClient(job));
