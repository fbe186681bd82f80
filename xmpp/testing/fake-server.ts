/**
 * Test support: the server's end of one client connection, scripted by the test (the pattern of
 * xmpp.js's test kit: feed stanzas in, look at what comes out). It parses what the client writes
 * into a queue of elements (the client's stream headers appear as <stream:stream/>, its closing
 * tag as </stream:stream>), sends whatever the test says, and knows a standard login (SASL with
 * SCRAM or PLAIN checked against one account, bind, stream management) so that a test scripts only
 * the step it is about.
 *
 * It runs over any wire: the in-memory FakeLink (xmpp/testing/kit.ts), where "nothing more
 * is coming" is known after the event loop settles, or a real socket (test/xmpp/scripted-server.ts),
 * where it is a real wait.
 */
import { Element, parse } from "ltx";
import { NS_CLIENT } from "../connection.js";
import { NS_BIND, NS_SASL, NS_TLS } from "../negotiate.js";
import type { ScramHash } from "../sasl/scram.js";
import { ScramServer } from "../sasl/testing.js";
import type { ChannelBinding } from "../sasl/types.js";
import { NS_SM } from "../stream-management.js";
import { NS_STREAM, XmlStreamParser } from "../xml-stream.js";
import { settle } from "./clock.js";

/** How the server's bytes reach the client. */
export interface ServerWire {
  write(text: string): void;
  /** The server closes its end (TCP FIN). */
  hangUp(): void;
  /** The link breaks (TCP reset). */
  reset(): void;
  /** The link is closed at both ends. */
  closed(): boolean;
  /**
   * The server stops reading what the client writes, so the client's socket backs up (its
   * write() returns false past the high-water mark), and starts again. Optional: the in-memory
   * link has it (FakeLink.stall/flow); a real socket's kernel buffers make it inexact.
   */
  stopReading?(): void;
  startReading?(): void;
}

export interface FakeServerOptions {
  /** Which connection of the session this is (0, 1, ...): it names stream and SM ids. */
  index: number;
  domain: string;
  /** The one account the server knows. */
  username: string;
  password: string;
  /** What the server's end of the TLS channel binds SCRAM -PLUS to, when it offers -PLUS. */
  channelBinding?: ChannelBinding;
  /**
   * Resolves once more input has arrived or none will: in-process, when the event loop has
   * settled (the default); over a real socket, after a real wait.
   */
  idle?: (arrived: () => boolean) => Promise<void>;
}

/** The closing tag the client sent, as an element in the queue. */
export const STREAM_END = "/stream:stream";

const NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";

export interface LoginScript {
  /** SASL mechanisms offered (default SCRAM-SHA-1); SCRAM and PLAIN are checked against the account. */
  mechanisms?: string[];
  /** Refuses <auth/> with this SASL condition whatever the credentials. */
  authFailure?: string;
  /** On a link that is not encrypted: offer STARTTLS (default true). */
  starttls?: boolean;
  /** Offer XEP-0198 after authentication (default true). */
  sm?: boolean;
  /** The answer to <resume/> (default: failed, item-not-found, no h). */
  resume?: { resumed: number } | { failed: { h?: number; condition?: string } };
  /** The answer to resource binding: a JID (default username@domain/<requested resource>) or an error. */
  bind?: { jid?: string } | { error: string };
  /** The answer to <enable/> (default: id sm-<index>, resume='true'); "silent": none at all. */
  enabled?: { id?: string; resume?: boolean; max?: number; location?: string } | "failed" | "silent";
}

export interface LoginOutcome {
  authenticated: boolean;
  mechanism?: string;
  /** What the client sent, step by step. */
  auth?: Element;
  resume?: Element;
  bind?: Element;
  enable?: Element;
  resumed: boolean;
}

export class FakeServer {
  /** Everything the client wrote, as text. */
  written = "";
  /** The client ended its side of the link. */
  clientEnded = false;
  /** STARTTLS was carried out on this link (in-memory: the link just reports itself encrypted). */
  tlsUpgraded = false;
  private readonly inbox: Element[] = [];
  private handler: ((el: Element) => void) | undefined;
  private parser!: XmlStreamParser;
  private parseError: Error | undefined;
  private streams = 0;

  constructor(
    private readonly wire: ServerWire,
    readonly options: FakeServerOptions,
  ) {
    this.newParser();
  }

  get index(): number {
    return this.options.index;
  }

  /** Bytes the client wrote. */
  feed(text: string): void {
    this.written += text;
    // The client restarts its stream with a new header: a new parser, as a server has after
    // <proceed/> and <success/>.
    const at = text.indexOf("<?xml");
    if (at < 0) {
      this.parser.write(text);
      return;
    }
    if (at > 0) this.parser.write(text.slice(0, at));
    this.newParser();
    this.parser.write(text.slice(at));
  }

  /** The client ended its side; a server closes its own in turn. */
  ended(): void {
    this.clientEnded = true;
    this.wire.hangUp();
  }

  /** The next element the client sent, or undefined when nothing more is coming. */
  async next(): Promise<Element | undefined> {
    if (this.inbox.length === 0) await this.idle();
    if (this.parseError) throw this.parseError;
    return this.inbox.shift();
  }

  /** The next element the client sent, which must be <name/> (in `xmlns`, when given). */
  async expect(name: string, xmlns?: string): Promise<Element> {
    const el = await this.next();
    if (!el)
      throw new Error(
        `expected <${name}/> from the client, it sent nothing more; its last bytes: ${tail(this.written)}`,
      );
    if (el.name !== name || (xmlns !== undefined && el.attrs.xmlns !== xmlns))
      throw new Error(`expected <${name}${xmlns ? ` xmlns='${xmlns}'` : ""}/> from the client, got ${show(el)}`);
    return el;
  }

  /** Asserts the client sent nothing more (so far). */
  async expectNothing(): Promise<void> {
    const el = await this.next();
    if (el) throw new Error(`expected nothing more from the client, got ${show(el)}`);
  }

  /**
   * From now on every element the client sends goes to `fn` (first those not read yet), for a
   * server that just answers, e.g. every <r/>, while the test looks elsewhere.
   */
  setHandler(fn: (el: Element) => void): void {
    this.handler = fn;
    for (const el of this.inbox.splice(0)) fn(el);
  }

  /** Everything the client sent that has not been read yet. */
  async drain(): Promise<Element[]> {
    await this.idle();
    return this.inbox.splice(0);
  }

  /** Bytes or an element to the client. */
  send(xml: string | Element): void {
    this.wire.write(typeof xml === "string" ? xml : xml.toString());
  }

  /** Parses `xml` as a stanza in jabber:client and sends it (default namespace filled in). */
  sendStanza(xml: string): void {
    const el = parse(xml);
    el.attrs.xmlns ??= NS_CLIENT;
    this.send(el);
  }

  /** The server's stream header followed by its features. */
  openStream(features: string): void {
    this.streams++;
    this.send(
      `<?xml version='1.0'?><stream:stream xmlns='${NS_CLIENT}' xmlns:stream='${NS_STREAM}' id='s${this.index}-${this.streams}' from='${this.options.domain}' version='1.0' xml:lang='en'><stream:features>${features}</stream:features>`,
    );
  }

  /** Waits for the client's stream header and answers it with `features`. */
  async acceptStream(features: string): Promise<Element> {
    const header = await this.expect("stream:stream");
    this.openStream(features);
    return header;
  }

  /** <a h/>: acknowledges `h` stanzas. */
  ack(h: number | string): void {
    this.send(`<a xmlns='${NS_SM}' h='${h}'/>`);
  }

  /** <r/>: asks the client for its count. */
  requestAck(): void {
    this.send(`<r xmlns='${NS_SM}'/>`);
  }

  /** The link is closed at both ends. */
  get closed(): boolean {
    return this.wire.closed();
  }

  /** The server stops reading: what the client writes backs up in its socket (see ServerWire). */
  stopReading(): void {
    if (!this.wire.stopReading) throw new Error("this wire cannot stop reading");
    this.wire.stopReading();
  }

  /** The server reads again: what backed up arrives, and the client's socket drains. */
  startReading(): void {
    this.wire.startReading?.();
  }

  /** The server closes the TCP connection (after a restart, a crash...). */
  hangUp(): void {
    this.wire.hangUp();
  }

  /** The link breaks under both ends. */
  reset(): void {
    this.wire.reset();
  }

  /**
   * The standard login, each step checked: stream, STARTTLS (on a plain link), SASL, restart, then
   * resumption, or bind and enable. Stops early where the script refuses.
   */
  async login(script: LoginScript = {}, secure = true): Promise<LoginOutcome> {
    const mechanisms = script.mechanisms ?? ["SCRAM-SHA-1"];
    const saslFeatures = `<mechanisms xmlns='${NS_SASL}'>${mechanisms.map((m) => `<mechanism>${m}</mechanism>`).join("")}</mechanisms>`;
    if (!secure && script.starttls !== false) {
      await this.acceptStream(`<starttls xmlns='${NS_TLS}'><required/></starttls>${saslFeatures}`);
      await this.expect("starttls", NS_TLS);
      this.send(`<proceed xmlns='${NS_TLS}'/>`);
    }
    await this.acceptStream(saslFeatures);
    const auth = await this.expect("auth", NS_SASL);
    const mechanism = String(auth.attrs.mechanism);
    if (!(await this.authenticate(auth, mechanisms, script.authFailure)))
      return { authenticated: false, mechanism, auth, resumed: false };

    const sm = script.sm !== false ? `<sm xmlns='${NS_SM}'/>` : "";
    await this.acceptStream(`<bind xmlns='${NS_BIND}'/>${sm}`);
    const outcome: LoginOutcome = { authenticated: true, mechanism, auth, resumed: false };
    let el = await this.expectOneOf(["resume", "iq"]);
    if (el.name === "resume") {
      outcome.resume = el;
      const answer = script.resume ?? { failed: {} };
      if ("resumed" in answer) {
        this.send(`<resumed xmlns='${NS_SM}' previd='${el.attrs.previd}' h='${answer.resumed}'/>`);
        return { ...outcome, resumed: true };
      }
      const h = answer.failed.h !== undefined ? ` h='${answer.failed.h}'` : "";
      const condition = answer.failed.condition ?? "item-not-found";
      this.send(`<failed xmlns='${NS_SM}'${h}><${condition} xmlns='${NS_STANZAS}'/></failed>`);
      el = await this.expect("iq");
    }
    outcome.bind = el;
    const bind = script.bind ?? {};
    if ("error" in bind) {
      this.send(
        `<iq type='error' id='${el.attrs.id}'><error type='cancel'><${bind.error} xmlns='${NS_STANZAS}'/></error></iq>`,
      );
      return outcome;
    }
    const resource = el.getChild("bind", NS_BIND)?.getChildText("resource") ?? "agent";
    const jid = bind.jid ?? `${this.options.username}@${this.options.domain}/${resource}`;
    this.send(`<iq type='result' id='${el.attrs.id}'><bind xmlns='${NS_BIND}'><jid>${jid}</jid></bind></iq>`);
    if (!sm) return outcome;
    outcome.enable = await this.expect("enable", NS_SM);
    const enabled = script.enabled ?? {};
    if (enabled === "silent") return outcome;
    if (enabled === "failed") {
      this.send(`<failed xmlns='${NS_SM}'><feature-not-implemented xmlns='${NS_STANZAS}'/></failed>`);
      return outcome;
    }
    const attrs = [
      `id='${enabled.id ?? `sm-${this.index}`}'`,
      ...(enabled.resume !== false ? ["resume='true'"] : []),
      ...(enabled.max !== undefined ? [`max='${enabled.max}'`] : []),
      ...(enabled.location !== undefined ? [`location='${enabled.location}'`] : []),
    ];
    this.send(`<enabled xmlns='${NS_SM}' ${attrs.join(" ")}/>`);
    return outcome;
  }

  /** SASL after <auth/>: PLAIN or SCRAM against the account. True on success. */
  private async authenticate(auth: Element, offered: string[], refuse: string | undefined): Promise<boolean> {
    const mechanism = String(auth.attrs.mechanism);
    const fail = (condition: string) => {
      this.send(`<failure xmlns='${NS_SASL}'><${condition}/></failure>`);
      return false;
    };
    if (refuse) return fail(refuse);
    if (!offered.includes(mechanism)) return fail("invalid-mechanism");
    const first = unb64(auth.text());
    if (mechanism === "PLAIN") {
      const [, user, pass] = first.toString("utf8").split("\0");
      if (user !== this.options.username || pass !== this.options.password) return fail("not-authorized");
      this.send(`<success xmlns='${NS_SASL}'/>`);
      return true;
    }
    const m = /^SCRAM-(SHA-1|SHA-256)(-PLUS)?$/.exec(mechanism);
    if (!m) return fail("invalid-mechanism");
    const plusOffered = offered.some((o) => o.endsWith("-PLUS"));
    const scram = new ScramServer({
      hash: m[1] as ScramHash,
      username: this.options.username,
      password: this.options.password,
      ...(plusOffered && this.options.channelBinding
        ? { channelBinding: this.options.channelBinding }
        : { supportsPlus: plusOffered }),
    });
    const serverFirst = scram.first(first);
    if (serverFirst.toString().startsWith("e=")) return fail("not-authorized");
    this.send(`<challenge xmlns='${NS_SASL}'>${serverFirst.toString("base64")}</challenge>`);
    const response = await this.expect("response", NS_SASL);
    const serverFinal = scram.final(unb64(response.text()));
    if (serverFinal.toString().startsWith("e=")) return fail("not-authorized");
    this.send(`<success xmlns='${NS_SASL}'>${serverFinal.toString("base64")}</success>`);
    return true;
  }

  private async expectOneOf(names: string[]): Promise<Element> {
    const el = await this.next();
    if (!el || !names.includes(el.name))
      throw new Error(
        `expected one of ${names.map((n) => `<${n}/>`).join(", ")} from the client, got ${el ? show(el) : "nothing"}`,
      );
    return el;
  }

  private receive(el: Element): void {
    if (this.handler) this.handler(el);
    else this.inbox.push(el);
  }

  private idle(): Promise<void> {
    return this.options.idle ? this.options.idle(() => this.inbox.length > 0) : settle();
  }

  private newParser(): void {
    this.parser?.removeAllListeners();
    this.parser = new XmlStreamParser({
      maxStanzaBytes: 1 << 24,
      maxDepth: 1000,
      maxAttributes: 10_000,
      ceilingBytes: 1 << 26,
    });
    this.parser.on("streamStart", (attrs) => this.receive(new Element("stream:stream", attrs)));
    this.parser.on("element", (el) => this.receive(el));
    this.parser.on("streamEnd", () => this.receive(new Element(STREAM_END)));
    this.parser.on("invalid", (err) => {
      this.parseError ??= new Error(`the client wrote malformed XML: ${err.message}`);
    });
  }
}

function unb64(text: string): Buffer {
  const t = text.trim();
  return t === "" || t === "=" ? Buffer.alloc(0) : Buffer.from(t, "base64");
}

function show(el: Element): string {
  const s = el.toString();
  return s.length > 300 ? `${s.slice(0, 300)}...` : s;
}

function tail(s: string): string {
  return JSON.stringify(s.slice(-200));
}
