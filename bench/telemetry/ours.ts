/**
 * Bench child for this project's telemetry stack: XmppSession -> TelemetryPublisher <- spool
 * (MemorySpoolStore, or FileSpoolStore with fsync never/always) <- Batcher, wired as
 * agent/telemetry/service.ts wires them. Only the Sampler is left out: it reads channels on timers
 * (>= 100 ms), and this job feeds readings as fast as the pipeline takes them. The feed keeps at most
 * (inFlight + 2) batches of readings not yet acknowledged, as a device whose sensors outrun the link.
 * Bundled by esbuild (bench/telemetry/build.ts) and run as plain node.
 */
import { Ctx, INVALID } from "../../kernel/schema-dsl.js";
import type { AgentError } from "../../kernel/errors.js";
import { Batcher } from "../../agent/telemetry/batcher.js";
import { encodeReadings, itemIdFor } from "../../agent/telemetry/codec.js";
import { FileSpoolStore } from "../../agent/telemetry/file-spool.js";
import { type PublishedInfo, TelemetryPublisher } from "../../agent/telemetry/publisher.js";
import { buildPublish, type NodeConfig } from "../../agent/telemetry/pubsub.js";
import type { Reading } from "../../agent/telemetry/reading.js";
import { MemorySpoolStore, type SpoolStore } from "../../agent/telemetry/spool.js";
import { xmppConfigSchema } from "../../xmpp/config.js";
import { XmppSession } from "../../xmpp/session.js";
import { BenchError } from "../lib/errors.js";
import { type PublishDriver, runTelemetryChild } from "./child.js";
import type { TelemetryJob } from "./protocol.js";
import { type BenchReading, benchReading, benchReadings } from "./readings.js";

const toReading = (r: BenchReading): Reading => ({ ...r, quality: "good" });

class OursDriver implements PublishDriver {
  private readonly session: XmppSession;
  private readonly nodeConfig: NodeConfig;
  private spool: SpoolStore | undefined;
  private publisher: TelemetryPublisher | undefined;
  private batcher: Batcher | undefined;

  constructor(private readonly job: TelemetryJob) {
    const ctx = new Ctx();
    const config = xmppConfigSchema.parse(
      {
        jid: `${job.user}@${job.domain}`,
        password: job.password,
        server: `${job.host}:${job.port}`,
        caFile: job.caFile,
        resource: job.resource,
        saslMechanisms: "SCRAM-SHA-1",
      },
      ctx,
    );
    if (config === INVALID) throw new BenchError("bench_config", `bad session config: ${JSON.stringify(ctx.issues)}`);
    // No initial presence: the job is publish-only, and @xmpp/client sends none by itself either.
    this.session = new XmppSession({ config, password: job.password, presence: false });
    this.nodeConfig = { persistItems: true, maxItems: job.maxItems, accessModel: "open" };
  }

  async connect(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onFault = (err: Error) => reject(err);
      this.session.once("fault", onFault);
      this.session.once("online", () => {
        this.session.off("fault", onFault);
        resolve();
      });
      this.session.start();
    });
    const sp = this.job.spool ?? { store: "memory" };
    this.spool =
      sp.store === "file" ? await FileSpoolStore.open({ dir: sp.dir, fsync: sp.fsync }) : new MemorySpoolStore();
    const spool = this.spool;
    const publisher = new TelemetryPublisher({
      session: this.session,
      spool,
      deviceId: this.job.device,
      service: this.job.service,
      nodes: { telemetry: this.job.node, status: `${this.job.node}-status` },
      nodeConfig: this.nodeConfig,
      inFlight: this.job.inFlight,
    });
    this.publisher = publisher;
    this.batcher = new Batcher({
      sink: async (readings) => {
        await spool.append(readings);
        publisher.notify();
      },
      maxReadings: this.job.batch,
      maxAgeMs: 1000,
    });
    publisher.start();
  }

  publish(firstSeq: number, count: number): Promise<void> {
    const publisher = this.publisher!;
    const batcher = this.batcher!;
    const end = firstSeq + count;
    const high = this.job.batch * (this.job.inFlight + 2);
    let next = firstSeq;
    let acked = 0;
    return new Promise((resolve, reject) => {
      const done = (err?: AgentError) => {
        publisher.off("published", onPublished);
        publisher.off("failure", done);
        batcher.off("failure", done);
        if (err) reject(err);
        else resolve();
      };
      const refill = () => {
        while (next < end && next - firstSeq - acked < high) batcher.add(toReading(benchReading(next++)));
      };
      const onPublished = (info: PublishedInfo) => {
        acked += info.readings;
        if (acked >= count) done();
        else refill();
      };
      publisher.on("published", onPublished);
      // Any failure ends the run: a benchmark that retries would time its backoff, not the stack.
      publisher.on("failure", done);
      batcher.on("failure", done);
      refill();
    });
  }

  iqBytes(firstSeq: number): number {
    const readings = benchReadings(firstSeq, this.job.batch).map(toReading);
    const item = itemIdFor({ firstSeq, lastSeq: firstSeq + this.job.batch - 1 });
    const iq = buildPublish(
      this.job.service,
      this.job.node,
      item,
      encodeReadings(readings, { device: this.job.device }),
      this.nodeConfig,
    );
    return Buffer.byteLength(iq.toString());
  }

  async stop(): Promise<void> {
    await this.batcher?.stop();
    this.publisher?.stop();
    await this.spool?.close();
    await this.session.stop();
  }
}

await runTelemetryChild((job) => new OursDriver(job));
