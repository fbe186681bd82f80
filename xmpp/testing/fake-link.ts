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

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.hooks.onWrite(chunk.toString("utf8"));
    callback();
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
