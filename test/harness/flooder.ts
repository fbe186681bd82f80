/**
 * A hostile account that floods: logs in to a harness server (STARTTLS, SCRAM, no stream
 * management) and writes stanzas at a fixed rate for a fixed time, then reports what it sent and
 * what came back. It runs as its own process (`runFlood` spawns it) so that producing the flood
 * does not share an event loop with the agent under test.
 *
 * Stanzas are written in batches every 10 ms. When the server reads slower than we write (more
 * than 1 MiB waiting in our socket), the batch is skipped: `sent` counts only what left, so the
 * achieved rate is reported honestly rather than the rate asked for.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { silentLogger } from "../../kernel/log.js";
import { Connection } from "../../xmpp/connection.js";
import { negotiate } from "../../xmpp/negotiate.js";
import { SaltedPasswordCache } from "../../xmpp/sasl/index.js";
import { connectTcp } from "../../xmpp/transport.js";
import { StanzaError } from "../../xmpp/stanza-error.js";
import { HarnessError } from "./errors.js";

/** What one flooded stanza is. `{n}` in a template is replaced by a counter, `{to}` by the target. */
export type FloodKind = "disco" | "execute" | "message" | "version" | "raw";

export interface FloodOptions {
  host: string;
  port: number;
  domain: string;
  caFile: string;
  user: string;
  password: string;
  /** Full JID of the device. */
  to: string;
  /** Stanzas per second asked for. */
  rate: number;
  /** How long to flood; with `count`, the flood ends when either is reached. */
  seconds: number;
  /** Stanzas to send in all (the server's pace may make this take longer than rate says). */
  count?: number;
  /** The mix, cycled in order: e.g. ["disco", "execute", "message"]. */
  kinds: FloodKind[];
  /** Node name for "execute" (a counter is appended so each one differs). */
  node?: string;
  /** Stanza ids are `<idPrefix><n>` (default "f"): a second flood in one server log stays apart. */
  idPrefix?: string;
  /** Template for "raw". */
  raw?: string;
  /** How long to keep listening for answers after the last stanza at most... */
  drainMs?: number;
  /** ...or until this many IQ answers have come. */
  drainUntilAnswers?: number;
  /**
   * When requests are still unanswered after the drain, write one whitespace keep-alive and wait
   * this long more (0: don't). Tells a stall on our own link to the server (the last bytes of a
   * sender that went quiet, e.g. held in a TLS buffer) from a request the device never answered:
   * answers that come only after the nudge are counted in `answeredAfterNudge`.
   */
  nudgeMs?: number;
  /**
   * After the drain, ask our own server for a ping (XEP-0199) and wait this long for its answer
   * before closing (0: don't). A server handles one connection's stanzas in order, so the answer
   * means every stanza of the flood was routed: closing earlier can lose what the server had not
   * read yet (seen on Prosody under load: thousands of a 50,000-stanza flood never delivered).
   */
  barrierMs?: number;
}

export interface FloodReport {
  sent: number;
  achievedRate: number;
  /** Answers by type and condition: { result: 12, "error:resource-constraint": 3 }. */
  answers: Record<string, number>;
  /** Stanzas that arrived which were not IQ answers (messages, presence). */
  other: number;
  /** IQ requests sent that got no answer by the end of the drain (the first 20 ids), nudge included. */
  unanswered: string[];
  /** Unanswered at the end of the drain: the first 20 ids. */
  unansweredBeforeNudge: string[];
  /** Answers that came only after the whitespace nudge (see FloodOptions.nudgeMs). */
  answeredAfterNudge: number;
  /** With barrierMs: how long the server took to answer the closing ping (undefined: it did not in time). */
  barrierAnsweredMs?: number;
  /** Bytes still in our socket's buffer when the drain ended: 0 if everything was handed to the kernel. */
  unwrittenBytesAtDrainEnd: number;
  disconnected: boolean;
}

function stanza(o: FloodOptions, kind: FloodKind, n: number): string {
  const id = `${o.idPrefix ?? "f"}${n}`;
  switch (kind) {
    case "disco":
      return `<iq type='get' to='${o.to}' id='${id}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`;
    case "version":
      return `<iq type='get' to='${o.to}' id='${id}'><query xmlns='jabber:iq:version'/></iq>`;
    case "execute":
      return `<iq type='set' to='${o.to}' id='${id}'><command xmlns='http://jabber.org/protocol/commands' node='${o.node ?? "status"}-${n}' action='execute'/></iq>`;
    case "message":
      return `<message to='${o.to}' type='chat' id='${id}'><body>flood ${n}</body></message>`;
    case "raw":
      return (o.raw ?? "").replaceAll("{n}", String(n)).replaceAll("{to}", o.to);
  }
}

const BARRIER_ID = "flood-barrier";

async function flood(o: FloodOptions): Promise<FloodReport> {
  const socket = await connectTcp({ host: o.host, port: o.port }, 5000);
  const conn = new Connection(socket, o.domain, { maxStanzaBytes: 16 << 20, maxDepth: 64, ceilingBytes: 64 << 20 });
  await negotiate(conn, {
    username: o.user,
    password: o.password,
    resource: "flood",
    tls: { servername: o.domain, ca: readFileSync(o.caFile, "utf8") },
    directTls: false,
    allowPlain: false,
    saslMechanisms: ["SCRAM-SHA-1", "SCRAM-SHA-256"],
    saltedCache: new SaltedPasswordCache(),
    stepTimeoutMs: 10_000,
    sm: { enabled: false, resumeMaxSeconds: 0 },
    log: silentLogger,
  });
  const report: FloodReport = {
    sent: 0,
    achievedRate: 0,
    answers: {},
    other: 0,
    unanswered: [],
    unansweredBeforeNudge: [],
    answeredAfterNudge: 0,
    unwrittenBytesAtDrainEnd: 0,
    disconnected: false,
  };
  const waiting = new Set<string>();
  conn.on("close", () => {
    report.disconnected = true;
  });
  let barrierAnswered: (() => void) | undefined;
  conn.setHandler((el) => {
    if (el.name === "iq" && el.attrs.id === BARRIER_ID) {
      barrierAnswered?.();
      return;
    }
    if (el.name === "iq" && (el.attrs.type === "result" || el.attrs.type === "error")) {
      waiting.delete(String(el.attrs.id));
      const key = el.attrs.type === "error" ? `error:${StanzaError.fromStanza(el).condition}` : "result";
      report.answers[key] = (report.answers[key] ?? 0) + 1;
    } else report.other++;
  });
  const tickMs = 10;
  const started = Date.now();
  const end = started + o.seconds * 1000;
  if (o.count !== undefined && o.seconds * 1000 < (o.count / o.rate) * 1000)
    throw new Error("seconds too short for count");
  let n = 0;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = Date.now();
      if ((o.count === undefined && now >= end) || conn.isClosed || report.sent === o.count) {
        clearInterval(timer);
        resolve();
        return;
      }
      // Catch up to the schedule: the number due by now, less what was already written.
      const scheduled = Math.floor(((now - started) * o.rate) / 1000);
      const due = Math.min(scheduled, o.count ?? scheduled) - report.sent;
      if (due <= 0 || conn.writableLength > 1 << 20) return;
      let batch = "";
      for (let i = 0; i < due; i++) {
        const kind = o.kinds[n % o.kinds.length]!;
        if (kind !== "message" && kind !== "raw") waiting.add(`${o.idPrefix ?? "f"}${n}`);
        batch += stanza(o, kind, n++);
      }
      conn.writeRaw(batch);
      report.sent += due;
    }, tickMs);
  });
  report.achievedRate = Math.round(report.sent / ((Date.now() - started) / 1000));
  const answered = () => Object.values(report.answers).reduce((a, b) => a + b, 0);
  const waitAnswers = async (ms: number) => {
    const end = Date.now() + ms;
    while (Date.now() < end && !conn.isClosed && answered() < (o.drainUntilAnswers ?? Number.POSITIVE_INFINITY))
      await new Promise((r) => setTimeout(r, 50));
  };
  await waitAnswers(o.drainMs ?? 2000);
  report.unwrittenBytesAtDrainEnd = conn.writableLength;
  report.unansweredBeforeNudge = [...waiting].slice(0, 20);
  if (waiting.size > 0 && (o.nudgeMs ?? 0) > 0 && !conn.isClosed) {
    const before = answered();
    conn.writeRaw(" ");
    await waitAnswers(o.nudgeMs!);
    report.answeredAfterNudge = answered() - before;
  }
  report.unanswered = [...waiting].slice(0, 20);
  if ((o.barrierMs ?? 0) > 0 && !conn.isClosed) {
    const t0 = Date.now();
    const answered = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), o.barrierMs);
      barrierAnswered = () => {
        clearTimeout(timer);
        resolve(true);
      };
      conn.writeRaw(`<iq type="get" id="${BARRIER_ID}" to="${o.domain}"><ping xmlns="urn:xmpp:ping"/></iq>`);
    });
    if (answered) report.barrierAnsweredMs = Date.now() - t0;
  }
  conn.close();
  return report;
}

/** Runs a flood in a child process; resolves with its report. */
export function runFlood(o: FloodOptions): Promise<FloodReport> {
  const self = fileURLToPath(import.meta.url);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", self, JSON.stringify(o)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      out += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      err += d;
    });
    child.once("close", (code) => {
      if (code === 0) {
        try {
          resolve(JSON.parse(out) as FloodReport);
          return;
        } catch (e) {
          reject(
            new HarnessError(
              "harness.flood_failed",
              `flooder printed no report: ${out.slice(0, 500)}`,
              {},
              { cause: e },
            ),
          );
          return;
        }
      }
      reject(
        new HarnessError("harness.flood_failed", `flooder exited with ${code}: ${err.trim().slice(-2000)}`, { code }),
      );
    });
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  flood(JSON.parse(process.argv[2] ?? "{}") as FloodOptions).then(
    (r) => {
      process.stdout.write(JSON.stringify(r));
      process.exit(0);
    },
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
