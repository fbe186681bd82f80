/**
 * Incremental parser for one XMPP stream (RFC 6120 §4): the <stream:stream> header, then
 * top-level elements (stanzas, nonzas), then </stream:stream>. Built on ltx's SAX tokenizer.
 *
 * What this adds on top of ltx, and why:
 * - A streaming UTF-8 decoder, so a multi-byte character split across TCP segments survives
 *   (ltx decodes each chunk on its own; @xmpp/client 0.14 corrupts such characters).
 * - Bounds: bytes buffered since the last complete top-level element, and nesting depth. A peer
 *   that streams an endless stanza makes us drop the connection rather than our memory grow.
 * - Well-formedness checks ltx skips: mismatched end tags, text outside a stanza, bad entities.
 * - Nothing above ever sees a half-built element: elements are emitted only when closed.
 */
import { EventEmitter } from "node:events";
import { StringDecoder } from "node:string_decoder";
import { Element } from "ltx";
import SaxLtxModule from "ltx/src/parsers/ltx.js";
import { AgentError } from "../core/errors.js";

/** ltx's tokenizer; its published types describe the tree builder instead, so name what we use. */
interface SaxTokenizer extends EventEmitter {
  write(text: string): void;
}
const SaxLtx = SaxLtxModule as unknown as new () => SaxTokenizer;

export const NS_STREAM = "http://etherx.jabber.org/streams";

export class XmlStreamError extends AgentError {}

export interface XmlStreamLimits {
  /** Largest top-level element, in bytes of input. */
  maxStanzaBytes: number;
  /** Deepest nesting inside a top-level element (the element itself is depth 1). */
  maxDepth: number;
}

export interface XmlStreamEvents {
  streamStart: [attrs: Record<string, string>];
  element: [el: Element];
  streamEnd: [];
  /** Not "error": an EventEmitter "error" without a listener would throw. */
  invalid: [err: XmlStreamError];
}

export class XmlStreamParser extends EventEmitter<XmlStreamEvents> {
  private readonly decoder = new StringDecoder("utf8");
  private readonly sax = new SaxLtx();
  private current: Element | null = null;
  /** 0 before the header, 1 inside the stream, 2+ inside an element. */
  private depth = 0;
  private pendingBytes = 0;
  private failed = false;
  private ended = false;
  /** Text before the stream header, held until the header is complete (see write()). */
  private prelude: string | null = "";
  /** Name of the top-level element being built, for error context. */
  private topName: string | undefined;

  constructor(private readonly limits: XmlStreamLimits) {
    super();
    this.sax.on("startElement", (name: string, attrs: Record<string, string>) => this.onStart(name, attrs));
    this.sax.on("endElement", (name: string) => this.onEnd(name));
    this.sax.on("text", (text: string) => this.onText(text));
  }

  /** Feeds bytes from the socket. After an error, further input is ignored. */
  write(chunk: Buffer | string): void {
    if (this.failed || this.ended) return;
    this.pendingBytes += typeof chunk === "string" ? Buffer.byteLength(chunk) : chunk.length;
    if (this.pendingBytes > this.limits.maxStanzaBytes) {
      this.fail("stanza_too_large", `stanza exceeds ${this.limits.maxStanzaBytes} bytes`, {
        limit: this.limits.maxStanzaBytes,
      });
      return;
    }
    let text = typeof chunk === "string" ? chunk : this.decoder.write(chunk);
    if (this.prelude !== null) {
      // ltx loses track of an <?xml ...?> declaration split across writes (it looks back one
      // character for the '?'), so the prelude is gathered whole and the declaration dropped here.
      this.prelude += text;
      const header = this.prelude.indexOf("<stream:stream");
      if (header < 0 || this.prelude.indexOf(">", header) < 0) {
        const rest = this.prelude.replace(/<\?[^>]*\?>/g, "").trimStart();
        if (rest.length > 0 && !rest.startsWith("<?") && !"<stream:stream".startsWith(rest.slice(0, 14))) {
          this.fail("xml_bad_stream_header", `expected <stream:stream>, got ${JSON.stringify(rest.slice(0, 40))}`);
        }
        return;
      }
      text = this.prelude.slice(header);
      this.prelude = null;
    }
    if (text.length === 0) return;
    try {
      this.sax.write(text);
    } catch (err) {
      // ltx throws on illegal entities and character references.
      this.fail("xml_malformed", `malformed XML: ${(err as Error).message}`, {}, err);
    }
  }

  private onStart(name: string, attrs: Record<string, string>): void {
    if (this.failed) return;
    if (this.depth === 0) {
      if (name !== "stream:stream" || attrs["xmlns:stream"] !== NS_STREAM) {
        this.fail("xml_bad_stream_header", `expected <stream:stream>, got <${name}>`, { name });
        return;
      }
      this.depth = 1;
      this.pendingBytes = 0;
      this.emit("streamStart", attrs);
      return;
    }
    if (!isValidName(name)) {
      this.fail("xml_malformed", `invalid element name ${JSON.stringify(name.slice(0, 64))}`);
      return;
    }
    if (this.depth - 1 >= this.limits.maxDepth) {
      this.fail("stanza_too_deep", `element nesting exceeds ${this.limits.maxDepth}`, { limit: this.limits.maxDepth });
      return;
    }
    const el = new Element(name, attrs);
    if (!this.current) this.topName = name;
    this.current = this.current ? this.current.cnode(el) : el;
    this.depth++;
  }

  private onEnd(name: string): void {
    if (this.failed) return;
    if (this.depth === 1) {
      if (name !== "stream:stream") {
        this.fail("xml_malformed", `unexpected </${name}> at stream level`, { name });
        return;
      }
      this.depth = 0;
      this.ended = true;
      this.emit("streamEnd");
      return;
    }
    const el = this.current;
    if (!el || el.name !== name) {
      this.fail("xml_malformed", `mismatched end tag </${name}>, open element is <${el?.name ?? "none"}>`, { name });
      return;
    }
    this.depth--;
    if (el.parent) {
      this.current = el.parent as Element;
      return;
    }
    this.current = null;
    this.pendingBytes = 0;
    this.emit("element", el);
  }

  private onText(text: string): void {
    if (this.failed) return;
    if (this.current) {
      this.current.t(text);
    } else if (text.trim().length > 0) {
      this.fail("xml_malformed", "text outside of any element", { text: text.slice(0, 64) });
    }
    // Whitespace between stanzas is a keepalive (RFC 6120 §4.6.1): nothing to do.
  }

  private fail(code: string, message: string, context: Record<string, unknown> = {}, cause?: unknown): void {
    if (this.failed) return;
    this.failed = true;
    // Which top-level element was cut short: the session counts a rejected stanza as handled.
    const ctx = this.current && this.topName ? { ...context, element: this.topName } : context;
    this.current = null;
    this.emit("invalid", new XmlStreamError(code, message, ctx, cause === undefined ? undefined : { cause }));
  }
}

const NAME = /^[A-Za-z_][\w.-]*(?::[A-Za-z_][\w.-]*)?$/;
function isValidName(name: string): boolean {
  return NAME.test(name);
}
