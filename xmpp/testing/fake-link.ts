/**
 * Test support: an in-memory socket. The client side is a Duplex a Connection runs on like on a
 * TCP or TLS socket; the server side gets each chunk the client writes (`onWrite`) and answers
 * with receive(). With `encrypted` set it also answers what negotiation asks a TLS socket (the
 * protocol, the cipher, channel-binding data), with fixed made-up values a test's SCRAM server
 * can bind to as well.
 */
import { createHash } from "node:crypto";
import { Duplex } from "node:stream";

/** The made-up TLS Finished message both ends of a FakeLink agree on (tls-unique). */
export const FAKE_TLS_FINISHED = Buffer.from("fake-link tls finished");
const FAKE_CERT_DER = Buffer.from("fake-link certificate");

export interface FakeLinkHooks {
  /** A chunk the client wrote. */
  onWrite(text: string): void;
  /** The client ended its side (after </stream:stream>, or on a stream error). */
  onEnd(): void;
}

export class FakeLink extends Duplex {
  /** While set, what the client writes waits in the link, as in a socket whose peer stopped reading. */
  private stalled = false;
  /** The write held by a stall: delivered, and its callback called, by flow(). */
  private held: (() => void) | undefined;

  constructor(
    private readonly hooks: FakeLinkHooks,
    /** What Connection.secure reads: true as if the link were TLS from the start (or after STARTTLS). */
    public encrypted: boolean,
  ) {
    super({ allowHalfOpen: false });
  }

  /** Bytes from the server to the client. */
  receive(data: string | Buffer): void {
    if (!this.destroyed && !this.readableEnded) this.push(typeof data === "string" ? Buffer.from(data) : data);
  }

  /** The server closes its end, as a TCP FIN would. */
  hangUp(): void {
    if (!this.destroyed && !this.readableEnded) this.push(null);
  }

  /** The link breaks, as a TCP reset would. */
  reset(): void {
    this.destroy(Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }));
  }

  /**
   * The server stops reading: the chunk being written is held with its callback, the ones after it
   * wait in the Writable's buffer, so `writableLength` grows and write() returns false past the
   * high-water mark, as on a TCP socket whose peer does not read. flow() lets it all through.
   */
  stall(): void {
    this.stalled = true;
  }

  /** The server reads again: the held write completes, the buffered ones follow, then 'drain'. */
  flow(): void {
    this.stalled = false;
    const held = this.held;
    this.held = undefined;
    held?.();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    const deliver = () => {
      this.hooks.onWrite(chunk.toString("utf8"));
      callback();
    };
    if (this.stalled) this.held = deliver;
    else deliver();
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.hooks.onEnd();
    callback();
  }

  override _read(): void {}

  getProtocol(): string | null {
    return this.encrypted ? "TLSv1.3" : null;
  }

  getCipher(): { name: string } {
    return { name: "FAKE_LINK_CIPHER" };
  }

  getFinished(): Buffer | undefined {
    return this.encrypted ? Buffer.from(FAKE_TLS_FINISHED) : undefined;
  }

  exportKeyingMaterial(length: number, label: string, context: Buffer): Buffer {
    return createHash("sha256").update(label).update(context).update(FAKE_TLS_FINISHED).digest().subarray(0, length);
  }

  getPeerCertificate(): { raw?: Buffer } {
    return { raw: Buffer.from(FAKE_CERT_DER) };
  }
}
