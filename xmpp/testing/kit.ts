/**
 * Test support: an XmppSession wired to in-memory connections on a manual clock. Each connection
 * attempt gets a FakeLink and a FakeServer (the server's end, scripted by the test); nothing
 * touches the network and no real time passes, so negotiation branches, stream-management edge
 * cases and timeouts are tested in milliseconds.
 *
 *   const kit = sessionKit();
 *   const server = await kit.online();              // start(), standard login, `online`
 *   kit.session.send(message);
 *   await server.expect("message");
 *   await kit.clock.advance(500);                   // ackDelayMs: the session asks for an ack
 *   await server.expect("r");
 *   await kit.stop();
 *
 * Links are encrypted from the start by default (as after TLS): a TLS handshake cannot run
 * in-memory. With `secure: false` a link starts plain and STARTTLS "upgrades" it in place, which
 * lets the rule that TLS is required be tested here too; the real handshake is tested against
 * Prosody and ejabberd (test/xmpp/).
 */
import type { Element } from "ltx";
import { Ctx, INVALID } from "../../kernel/schema-dsl.js";
import type { AgentError } from "../../kernel/errors.js";
import { type Logger, silentLogger } from "../../kernel/log.js";
import { type XmppConfig, xmppConfigSchema } from "../config.js";
import type { ConnectTarget } from "../connect.js";
import { Connection } from "../connection.js";
import { type SessionOptions, type SessionState, XmppSession } from "../session.js";
import { TransportError } from "../transport.js";
import { KitClock, settle } from "./clock.js";
import { FAKE_TLS_FINISHED, FakeLink } from "./fake-link.js";
import { FakeServer, type LoginScript } from "./fake-server.js";

export interface SessionKitOptions {
  /** Default device@iot.test. */
  jid?: string;
  /** The password the session logs in with and the server expects. Default "secret". */
  password?: string;
  /** Overrides of the xmpp config section (nested objects partial, as in a config file). */
  config?: Record<string, unknown>;
  /** Further session options (presence, isOperator, software...). Presence is off by default. */
  session?: Partial<SessionOptions>;
  /** Links start encrypted (default true); false: plain, STARTTLS needed. */
  secure?: boolean;
  log?: Logger;
}

export interface SessionKit {
  session: XmppSession;
  config: XmppConfig;
  clock: KitClock;
  /** The server's end of every connection so far, in order. */
  servers: FakeServer[];
  /** What the session asked of each connect, in order. */
  targets: ConnectTarget[];
  /** What the session reported. */
  events: {
    states: SessionState[];
    online: { resumed: boolean; jid: string }[];
    offline: { reason: string; error?: AgentError }[];
    faults: AgentError[];
    refusals: AgentError[];
    stanzas: Element[];
  };
  /** The server of the newest connection. */
  readonly server: FakeServer;
  /** The server of the session's next connection attempt (after settling; throws if none was made). */
  nextServer(): Promise<FakeServer>;
  /** start() if needed, then the next connection's standard login; resolves once `online`. */
  online(script?: LoginScript): Promise<FakeServer>;
  /** Makes the next connection attempts fail at connect (as a refused TCP connection), or not. */
  refuseConnections(refuse: boolean): void;
  /** Lets everything that is ready run (no time passes). */
  settle(): Promise<void>;
  /** stop(), then settles. */
  stop(): Promise<void>;
}

export function sessionKit(o: SessionKitOptions = {}): SessionKit {
  const jid = o.jid ?? "device@iot.test";
  const password = o.password ?? "secret";
  const [username = "device", domain = "iot.test"] = jid.split("/")[0]!.split("@");
  const config = kitConfig({ jid, password, ...o.config });
  const clock = new KitClock();
  const servers: FakeServer[] = [];
  const targets: ConnectTarget[] = [];
  let handedOut = 0;
  let refusing = false;
  const secure = o.secure ?? true;

  const connect = async (target: ConnectTarget): Promise<Connection> => {
    targets.push(target);
    if (refusing) throw new TransportError("connect_failed", "connection refused (sessionKit.refuseConnections)", {});
    let server: FakeServer | undefined;
    const link = new FakeLink(
      { onWrite: (text) => server?.feed(text), onEnd: () => queueMicrotask(() => server?.ended()) },
      secure,
    );
    server = new FakeServer(
      {
        write: (text) => link.receive(text),
        hangUp: () => link.hangUp(),
        reset: () => link.reset(),
        closed: () => link.destroyed,
        stopReading: () => link.stall(),
        startReading: () => link.flow(),
      },
      {
        index: servers.length,
        domain,
        username,
        password,
        channelBinding: { type: "tls-unique", data: FAKE_TLS_FINISHED },
      },
    );
    servers.push(server);
    const upgraded = server;
    return new Connection(link, target.domain, target.limits, {
      timers: target.timers,
      tlsUpgrade: async (plain) => {
        (plain as FakeLink).encrypted = true;
        upgraded.tlsUpgraded = true;
        return plain;
      },
    });
  };

  const session = new XmppSession({
    config,
    password,
    log: o.log ?? silentLogger,
    timers: clock,
    // Every backoff draw is the floor (100 ms): reconnects happen at known times.
    random: () => 0,
    presence: false,
    ...o.session,
    connect,
  });
  const events: SessionKit["events"] = {
    states: [],
    online: [],
    offline: [],
    faults: [],
    refusals: [],
    stanzas: [],
  };
  session.on("state", (s) => events.states.push(s));
  session.on("online", (i) => events.online.push(i));
  session.on("offline", (i) => events.offline.push(i));
  session.on("fault", (e) => events.faults.push(e));
  session.on("refused", (e) => events.refusals.push(e));
  session.on("stanza", (el) => events.stanzas.push(el));

  const kit: SessionKit = {
    session,
    config,
    clock,
    servers,
    targets,
    events,
    get server(): FakeServer {
      const s = servers.at(-1);
      if (!s) throw new Error("the session has not connected yet");
      return s;
    },
    async nextServer() {
      await settle();
      const s = servers[handedOut];
      if (!s)
        throw new Error(
          `the session made no new connection attempt (state ${session.state}, last error ${session.stats().lastError})`,
        );
      handedOut++;
      return s;
    },
    async online(script) {
      session.start();
      const server = await kit.nextServer();
      const before = events.online.length;
      await server.login(script, secure);
      await settle();
      if (events.online.length === before)
        throw new Error(`the session did not get online (state ${session.state}, ${session.stats().lastError})`);
      return server;
    },
    refuseConnections(refuse) {
      refusing = refuse;
    },
    settle: () => settle(),
    async stop() {
      await session.stop();
      await settle();
    },
  };
  return kit;
}

/** The xmpp config section for a kit session: defaults, plus `raw` as a config file would give. */
export function kitConfig(raw: Record<string, unknown>): XmppConfig {
  const ctx = new Ctx();
  const cfg = xmppConfigSchema.parse(raw, ctx);
  if (cfg === INVALID) throw new Error(`bad kit config: ${JSON.stringify(ctx.issues)}`);
  return cfg;
}
