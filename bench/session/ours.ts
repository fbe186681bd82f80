/**
 * Bench child for this project's XmppSession. Bundled by esbuild (bench/session/build.ts) and run
 * as plain node, so its memory is not inflated by tsx's loader.
 */
import { Element } from "ltx";
import { Ctx, INVALID } from "../../kernel/schema-dsl.js";
import { xmppConfigSchema } from "../../xmpp/config.js";
import { XmppSession } from "../../xmpp/session.js";
import { BenchError } from "../lib/errors.js";
import { absoluteNow } from "../lib/stats.js";
import { type BenchClient, messageBody, type ResumeTiming, runChild } from "./child.js";
import type { ChildJob } from "./protocol.js";

function sessionFor(job: ChildJob): XmppSession {
  const ctx = new Ctx();
  const config = xmppConfigSchema.parse(
    {
      jid: `${job.user}@${job.domain}`,
      password: job.password,
      server: `${job.host}:${job.port}`,
      caFile: job.caFile,
      resource: job.resource,
      saslMechanisms: "SCRAM-SHA-1",
      // The job hands 10,000 messages over at once (as @xmpp/client's unbounded queue allows);
      // the default bound (1000) would refuse the rest with send_queue_full. Everything else is default.
      streamManagement: {
        maxQueue: Math.max(1000, job.messages),
        ...(job.ackDelayMs === undefined ? {} : { ackDelayMs: job.ackDelayMs }),
      },
    },
    ctx,
  );
  if (config === INVALID) throw new BenchError("bench_config", `bad session config: ${JSON.stringify(ctx.issues)}`);
  // No initial presence: @xmpp/client sends none by itself, and the job is send-only.
  return new XmppSession({ config, password: job.password, presence: false });
}

class OursClient implements BenchClient {
  private readonly session: XmppSession;
  private readonly sink: string;
  private drops = 0;

  constructor(job: ChildJob) {
    this.session = sessionFor(job);
    this.sink = job.sink;
    this.session.on("offline", () => this.drops++);
  }

  get linkDrops(): number {
    return this.drops;
  }

  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onFault = (err: Error) => reject(err);
      this.session.once("fault", onFault);
      this.session.once("online", () => {
        this.session.off("fault", onFault);
        const st = this.session.stats();
        if (!st.smEnabled || st.mechanism !== "SCRAM-SHA-1")
          reject(new BenchError("bench_login", `online without SM or SCRAM-SHA-1: ${JSON.stringify(st)}`));
        else resolve();
      });
      this.session.start();
    });
  }

  async sendBurst(count: number, idPrefix: string): Promise<void> {
    const sends: Promise<void>[] = new Array(count);
    for (let i = 0; i < count; i++) {
      const m = new Element("message", { to: this.sink, type: "headline", id: `${idPrefix}${i}` });
      m.c("body").t(messageBody(i));
      sends[i] = this.session.send(m);
    }
    await Promise.all(sends);
  }

  nextOnline(): Promise<ResumeTiming> {
    return new Promise((resolve) => {
      let attemptAt = Number.NaN;
      const onState = (state: string) => {
        if (state === "resuming" || state === "connecting") attemptAt = absoluteNow();
      };
      this.session.on("state", onState);
      this.session.once("online", (info) => {
        const onlineAt = absoluteNow();
        this.session.off("state", onState);
        resolve({ attemptAt, onlineAt, resumed: info.resumed });
      });
    });
  }

  stop(): Promise<void> {
    return this.session.stop();
  }
}

await runChild((job) => new OursClient(job));
