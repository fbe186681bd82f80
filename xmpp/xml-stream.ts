/**
 * Incremental parser for one XMPP stream (RFC 6120 §4): the <stream:stream> header, then
 * top-level elements (stanzas, nonzas), then </stream:stream>. Built on ltx's SAX tokenizer.
 *
 * What this adds on top of ltx, and why:
 * - A streaming UTF-8 decoder, so a multi-byte character split across TCP segments survives
 *   (ltx decodes each chunk on its own; @xmpp/client 0.14 corrupts such characters).
 * - Bounds per top-level element: its size (names, attributes and text as decoded), its nesting
 *   depth and attributes per element. An element that breaks one is skipped whole: the tree built
 *   so far is dropped, the rest is read to its end without building anything, and a stub with the
 *   top element's routing attributes (id, type, from, to) is emitted instead, so the session can
 *   count it for stream management and answer an IQ with an error. The stream stays up: one bad
 *   stanza from a stranger costs that stranger, not the device's link.
 * - A hard ceiling on input bytes of one top-level element (`ceilingBytes`): ltx keeps an
 *   unfinished token (a text node, an attribute value) in memory until it ends, so past the
 *   ceiling even skipping would cost memory, and the connection is dropped instead. It is about
 *   one element, not one socket read: a read of many small stanzas larger than the ceiling is fine.
 * - Well-formedness checks ltx skips: mismatched end tags, text outside a stanza, bad entities.
 * - Nothing above ever sees a half-built element: elements are emitted only when closed.
 */
import { EventEmitter } from "node:events";
import { StringDecoder } from "node:string_decoder";
import { Element } from "ltx";
import SaxLtxModule from "ltx/src/parsers/ltx.js";
import { AgentError } from "../kernel/errors.js";

/** ltx's tokenizer; its published types describe the tree builder instead, so name what we use. */
interface SaxTokenizer extends EventEmitter {
  write(text: string): void;
}
const SaxLtx = SaxLtxModule as unknown as new () => SaxTokenizer;

export const NS_STREAM = "http://etherx.jabber.org/streams";

export class XmlStreamError extends AgentError {}

export interface XmlStreamLimits {
  /**
   * Largest top-level element, counted as its decoded content (element and attribute names and
   * values, text); a larger one is skipped. Decoded rather than wire bytes: a server re-escapes
   * text (one ' becomes &apos;), and what costs the device memory is the decoded tree.
   */
  maxStanzaBytes: number;
  /** Deepest nesting inside a top-level element (the element itself is depth 1); deeper: skipped. */
  maxDepth: number;
  /** Most attributes on one element; more: skipped. */
  maxAttributes?: number;
  /**
   * Input bytes of one top-level element (or of stray input between elements) beyond which the
   * connection is dropped rather than the element skipped. Default: 8 x maxStanzaBytes.
   */
  ceilingBytes?: number;
}

/**
 * Stands in for a top-level element that broke a limit: same name, only the routing attributes,
 * no children. `reason` says which limit (stanza_too_large, stanza_too_deep, stanza_too_many_attributes).
 */
export class SkippedElement extends Element {
  constructor(
    name: string,
    attrs: Record<string, string>,
    readonly reason: XmlStreamError,
  ) {
    super(name, attrs);
  }
}

/** The attributes a skipped element keeps: enough to route an error reply and to log who sent it. */
const ROUTING_ATTRS = ["id", "type", "from", "to", "xmlns"] as const;
/** A skipped element's routing attributes are cut to this length (they may be what was oversized). */
const MAX_ROUTING_ATTR = 3072;

export interface XmlStreamEvents {
  streamStart: [attrs: Record<string, string>];
  element: [el: Element];
  streamEnd: [];
  /** Not "error": an EventEmitter "error" without a listener would throw. */
  invalid: [err: XmlStreamError];
}

/** Characters given to the parser at a time, so that the ceiling is checked within a socket read. */
const PIECE_CHARS = 4096;

export class XmlStreamParser extends EventEmitter<XmlStreamEvents> {
  private readonly decoder = new StringDecoder("utf8");
  private readonly sax = new SaxLtx();
  private current: Element | null = null;
  /** 0 before the header, 1 inside the stream, 2+ inside an element. */
  private depth = 0;
  /** Input bytes since the last complete top-level element: checked against the ceiling. */
  private pendingBytes = 0;
  /** Decoded size of the top-level element being read. */
  private stanzaBytes = 0;
  /** Set while the current top-level element is being skipped: why. */
  private skipping: XmlStreamError | null = null;
  private topAttrs: Record<string, string> = {};
  private readonly ceiling: number;
  private readonly maxAttributes: number;
  private failed = false;
  private ended = false;
  /** Text before the stream header, held until the header is complete (see write()). */
  private prelude: string | null = "";
  /** Name of the top-level element being built, for error context. */
  private topName: string | undefined;

  constructor(private readonly limits: XmlStreamLimits) {
    super();
    this.ceiling = limits.ceilingBytes ?? limits.maxStanzaBytes * 8;
    this.maxAttributes = limits.maxAttributes ?? 64;
    this.sax.on("startElement", (name: string, attrs: Record<string, string>) => this.onStart(name, attrs));
    this.sax.on("endElement", (name: string) => this.onEnd(name));
    this.sax.on("text", (text: string) => this.onText(text));
  }

  /** Feeds bytes from the socket. After an error, further input is ignored. */
  write(chunk: Buffer | string): void {
    if (this.failed || this.ended) return;
    let text = typeof chunk === "string" ? chunk : this.decoder.write(chunk);
    if (this.prelude !== null) {
      if (!this.count(Buffer.byteLength(text))) return;
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
      // Counted above as prelude; counted again below, a piece at a time, from the header on.
      this.pendingBytes = 0;
    }
    const bytes = Buffer.byteLength(text);
    if (this.pendingBytes + bytes <= this.ceiling) {
      this.pendingBytes += bytes;
      this.feed(text);
      return;
    }
    // One read can hold many whole stanzas (a TLS record up to 16 KiB, a TCP read up to 64 KiB):
    // the ceiling is about one element, so a read that would pass it goes to the parser a piece at
    // a time, and the count restarts at each element's end (onEnd). An element that ends inside a
    // piece lets the rest of that piece go uncounted: the ceiling holds to within one piece.
    for (let at = 0; at < text.length && !this.failed; at += PIECE_CHARS) {
      const piece = text.slice(at, at + PIECE_CHARS);
      if (!this.count(Buffer.byteLength(piece))) return;
      this.feed(piece);
    }
  }

  /** Adds input bytes to the current element's count; false (and the stream failed) past the ceiling. */
  private count(bytes: number): boolean {
    this.pendingBytes += bytes;
    if (this.pendingBytes <= this.ceiling) return true;
    this.fail("stanza_over_ceiling", `an element exceeds ${this.ceiling} bytes of input, too large even to skip`, {
      limit: this.ceiling,
    });
    return false;
  }

  private feed(text: string): boolean {
    if (text.length === 0) return true;
    try {
      this.sax.write(text);
    } catch (err) {
      // ltx throws on illegal entities and character references.
      this.fail("xml_malformed", `malformed XML: ${(err as Error).message}`, {}, err);
    }
    return !this.failed;
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
    this.depth++;
    if (this.skipping) return;
    if (this.depth === 2) {
      this.topName = name;
      this.topAttrs = attrs;
      this.stanzaBytes = 0;
    }
    let size = name.length + 3;
    let count = 0;
    for (const key in attrs) {
      size += key.length + (attrs[key]?.length ?? 0) + 4;
      count++;
    }
    this.stanzaBytes += size;
    if (this.depth - 2 >= this.limits.maxDepth) {
      this.skip("stanza_too_deep", `element nesting exceeds ${this.limits.maxDepth}`, this.limits.maxDepth);
      return;
    }
    if (count > this.maxAttributes) {
      this.skip(
        "stanza_too_many_attributes",
        `an element has more than ${this.maxAttributes} attributes`,
        this.maxAttributes,
      );
      return;
    }
    if (this.stanzaBytes > this.limits.maxStanzaBytes) {
      this.skip("stanza_too_large", `stanza exceeds ${this.limits.maxStanzaBytes} bytes`, this.limits.maxStanzaBytes);
      return;
    }
    const el = new Element(name, attrs);
    this.current = this.current ? this.current.cnode(el) : el;
  }

  /** Drops what was built of the current top-level element and reads the rest without building it. */
  private skip(code: string, message: string, limit: number): void {
    this.current = null;
    this.skipping = new XmlStreamError(code, message, { limit, element: this.topName });
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
    if (this.skipping) {
      // Inside skipped content only the depth is followed: the server has parsed this XML already,
      // and keeping a name stack for it would cost the memory that skipping saves.
      this.depth--;
      if (this.depth === 1) this.emitSkipped(name);
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
    this.topAttrs = {};
    this.emit("element", el);
  }

  private onText(text: string): void {
    if (this.failed || this.skipping) return;
    if (this.current) {
      this.stanzaBytes += text.length;
      if (this.stanzaBytes > this.limits.maxStanzaBytes) {
        this.skip("stanza_too_large", `stanza exceeds ${this.limits.maxStanzaBytes} bytes`, this.limits.maxStanzaBytes);
        return;
      }
      this.current.t(text);
    } else if (text.trim().length > 0) {
      this.fail("xml_malformed", "text outside of any element", { text: text.slice(0, 64) });
    } else {
      // Whitespace between stanzas is a keepalive (RFC 6120 §4.6.1): it resets the input count.
      this.pendingBytes = 0;
    }
  }

  private emitSkipped(name: string): void {
    const reason = this.skipping!;
    this.skipping = null;
    this.current = null;
    this.pendingBytes = 0;
    const attrs: Record<string, string> = {};
    for (const key of ROUTING_ATTRS) {
      const v = this.topAttrs[key];
      if (v !== undefined) attrs[key] = v.length > MAX_ROUTING_ATTR ? v.slice(0, MAX_ROUTING_ATTR) : v;
    }
    this.topAttrs = {};
    this.emit("element", new SkippedElement(name, attrs, reason));
  }

  private fail(code: string, message: string, context: Record<string, unknown> = {}, cause?: unknown): void {
    if (this.failed) return;
    this.failed = true;
    // Which top-level element was cut short: the session counts a rejected stanza as handled.
    const ctx = this.depth >= 2 && this.topName ? { ...context, element: this.topName } : context;
    this.current = null;
    this.skipping = null;
    this.emit("invalid", new XmlStreamError(code, message, ctx, cause === undefined ? undefined : { cause }));
  }
}

const NAME = /^[A-Za-z_][\w.-]*(?::[A-Za-z_][\w.-]*)?$/;
function isValidName(name: string): boolean {
  return NAME.test(name);
}
