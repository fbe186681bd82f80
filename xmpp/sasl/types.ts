/**
 * The contract between the session (which does the XML framing and base64 of <auth/>, <challenge/>,
 * <response/>, <success/>) and the mechanisms in this folder (which only see raw bytes).
 */
export interface SaslMechanism {
  /** IANA name as sent in <auth mechanism="...">, e.g. "SCRAM-SHA-256-PLUS". */
  readonly name: string;
  /** The client's first message (SCRAM client-first-message, or PLAIN's whole message). */
  initialResponse(): Buffer;
  /** Answers a server challenge (SCRAM: server-first -> client-final). */
  challenge(data: Buffer): Buffer;
  /** Verifies the server's final message (from <success/> additional data, or a last challenge); throws SaslError on mismatch. */
  verifySuccess(data: Buffer | null): void;
}

export interface SaslCredentials {
  /** The authentication identity; for XMPP the JID's localpart. */
  username: string;
  password: string;
  /** Authorization identity, only when acting as someone else (rare; most servers refuse it). */
  authzid?: string;
}

export type ChannelBindingType = "tls-exporter" | "tls-server-end-point" | "tls-unique";

export interface ChannelBinding {
  type: ChannelBindingType;
  /** The channel-binding data for this TLS connection (RFC 9266 / RFC 5929). Never empty. */
  data: Buffer;
}

export const CHANNEL_BINDING_TYPES: readonly ChannelBindingType[] = [
  "tls-exporter",
  "tls-server-end-point",
  "tls-unique",
];
