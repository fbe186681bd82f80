/**
 * Bench child that measures Prosody's own ceiling: a minimal raw XMPP client (STARTTLS, SASL PLAIN,
 * bind; no stream management, no parser) that writes every publish IQ of the measured phase at
 * once, pre-serialised before the clock starts, and counts the IQ results as they stream back.
 * The IQs are byte-for-byte what the agent sends (built with the agent's codec and pubsub builders),
 * so the server does the same work per item. Client CPU here is not a figure; server throughput is.
 */
import { readFileSync } from "node:fs";
import net from "node:net";
import tls from "node:tls";
import { encodeReadings, itemIdFor } from "../../agent/telemetry/codec.js";
import { buildCreate, buildPublish, type NodeConfig } from "../../agent/telemetry/pubsub.js";
import type { Reading } from "../../agent/telemetry/reading.js";
import { BenchError } from "../lib/errors.js";
import { type PublishDriver, runTelemetryChild } from "./child.js";
import type { TelemetryJob } from "./protocol.js";
import { benchReadings } from "./readings.js";

/** One whole <iq/>, self-closing or not (the login and node creation answers are read with it). */
const IQ_RE = /<iq\b[^>]*?(\/>|>[\s\S]*?<\/iq>)/;

const xmlEscape = (s: string) =>
  s.replace(/[&<>'"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", "'": "&apos;", '"': "&quot;" })[c]!);

class RawDriver implements PublishDriver {
  private socket: net.Socket | tls.TLSSocket | undefined;
  private buf = "";
  private waiter: { re: RegExp; resolve: (m: RegExpExecArray) => void } | undefined;
  /** Set while publishing: counts IQ answers instead of buffering text. */
  private counting: { results: number; errors: number; firstError?: string; onChange: () => void } | undefined;
  private readonly nodeConfig: NodeConfig;
  private prepared: { firstSeq: number; chunks: string[] } | undefined;
  private nodeReady = false;
  private nextId = 1;

  constructor(private readonly job: TelemetryJob) {
    this.nodeConfig = { persistItems: true, maxItems: job.maxItems, accessModel: "open" };
  }

  private onData = (chunk: string) => {
    this.buf += chunk;
    if (this.counting) {
      this.countAnswers();
      return;
    }
    const w = this.waiter;
    if (!w) return;
    const m = w.re.exec(this.buf);
    if (m) {
      this.buf = this.buf.slice(m.index + m[0].length);
      this.waiter = undefined;
      w.resolve(m);
    }
  };

  private countAnswers(): void {
    const c = this.counting!;
    const re = /<iq\s[^>]*>/g;
    let end = 0;
    for (let m = re.exec(this.buf); m; m = re.exec(this.buf)) {
      end = m.index + m[0].length;
      if (/type=['"]result['"]/.test(m[0])) c.results++;
      else if (/type=['"]error['"]/.test(m[0])) {
        c.errors++;
        c.firstError ??= this.buf.slice(m.index, m.index + 400);
      }
    }
    // Keep an unfinished "<iq ..." (or a split "<i") for the next chunk; drop everything counted.
    const open = this.buf.indexOf("<iq", end);
    this.buf = open >= 0 ? this.buf.slice(open) : this.buf.slice(-3);
    c.onChange();
  }

  private waitFor(re: RegExp, what: string): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(
        () => reject(new BenchError("bench_raw", `raw client: no ${what}; got ${this.buf.slice(-300)}`)),
        10_000,
      );
      this.waiter = {
        re,
        resolve: (m) => {
          clearTimeout(t);
          resolve(m);
        },
      };
      this.onData("");
    });
  }

  private write(s: string): void {
    this.socket!.write(s);
  }

  private async openStream(): Promise<string> {
    this.write(
      `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='${this.job.domain}' version='1.0'>`,
    );
    const m = await this.waitFor(/<stream:features[\s\S]*?<\/stream:features>/, "stream features");
    return m[0];
  }

  async connect(): Promise<void> {
    const { host, port, domain } = this.job;
    const plain = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ host, port }, () => resolve(s));
      s.once("error", reject);
    });
    plain.setNoDelay(true);
    plain.setEncoding("utf8");
    plain.on("data", this.onData);
    this.socket = plain;
    await this.openStream();
    this.write("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    await this.waitFor(/<proceed[^>]*>/, "STARTTLS proceed");
    plain.off("data", this.onData);
    this.buf = "";
    const secure = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ socket: plain, ca: readFileSync(this.job.caFile), servername: domain }, () => resolve(s));
      s.once("error", reject);
    });
    secure.setEncoding("utf8");
    secure.on("data", this.onData);
    this.socket = secure;
    const features = await this.openStream();
    if (!features.includes("<mechanism>PLAIN</mechanism>"))
      throw new BenchError("bench_raw", "server offers no PLAIN over TLS");
    const cred = Buffer.from(`\0${this.job.user}\0${this.job.password}`).toString("base64");
    this.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${cred}</auth>`);
    const auth = await this.waitFor(/<(success|failure)[\s\S]*?(\/>|<\/success>|<\/failure>)/, "SASL outcome");
    if (auth[1] !== "success") throw new BenchError("bench_raw", `SASL PLAIN failed: ${auth[0]}`);
    await this.openStream();
    this.write(
      `<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${xmlEscape(this.job.resource)}</resource></bind></iq>`,
    );
    const bound = await this.waitFor(IQ_RE, "bind result");
    if (!/type=['"]result['"]/.test(bound[0])) throw new BenchError("bench_raw", `bind failed: ${bound[0]}`);
  }

  private iqString(firstSeq: number): string {
    const readings: Reading[] = benchReadings(firstSeq, this.job.batch).map((r) => ({ ...r, quality: "good" }));
    const item = itemIdFor({ firstSeq, lastSeq: firstSeq + this.job.batch - 1 });
    const payload = encodeReadings(readings, { device: this.job.device });
    return buildPublish(this.job.service, this.job.node, item, payload, this.nodeConfig).toString();
  }

  /** Serialises the measured phase's IQs before the clock starts (the ceiling is the server's). */
  prepare(firstSeq: number, count: number): void {
    const chunks: string[] = [];
    let chunk = "";
    for (let seq = firstSeq; seq < firstSeq + count; seq += this.job.batch) {
      chunk += this.iqString(seq).replace("<iq ", `<iq id='p${this.nextId++}' `);
      if (chunk.length > 64 * 1024) {
        chunks.push(chunk);
        chunk = "";
      }
    }
    if (chunk) chunks.push(chunk);
    this.prepared = { firstSeq, chunks };
  }

  async publish(firstSeq: number, count: number): Promise<void> {
    if (!this.nodeReady) {
      this.write(buildCreate(this.job.service, this.job.node, this.nodeConfig).attr("id", "create").toString());
      const created = await this.waitFor(IQ_RE, "create result");
      if (!/type=['"]result['"]/.test(created[0]) && !created[0].includes("conflict"))
        throw new BenchError("bench_raw", `node creation failed: ${created[0]}`);
      this.nodeReady = true;
    }
    if (this.prepared?.firstSeq !== firstSeq) this.prepare(firstSeq, count);
    const chunks = this.prepared!.chunks;
    this.prepared = undefined;
    const items = count / this.job.batch;
    await new Promise<void>((resolve, reject) => {
      this.counting = {
        results: 0,
        errors: 0,
        onChange: () => {
          const c = this.counting!;
          if (c.errors > 0) {
            this.counting = undefined;
            reject(new BenchError("bench_raw", `publish refused: ${c.firstError}`));
          } else if (c.results >= items) {
            this.counting = undefined;
            this.buf = "";
            resolve();
          }
        },
      };
      for (const c of chunks) this.write(c);
    });
  }

  iqBytes(firstSeq: number): number {
    return Buffer.byteLength(this.iqString(firstSeq));
  }

  async stop(): Promise<void> {
    const s = this.socket;
    if (!s) return;
    s.end("</stream:stream>");
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        s.destroy();
        resolve();
      }, 1000);
      s.once("close", () => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}

await runTelemetryChild((job) => new RawDriver(job));
