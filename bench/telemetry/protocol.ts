/**
 * What the telemetry benchmark's parent and its children say to each other: JSON lines, the job on
 * the child's stdin (the password travels here, not in argv or the environment), events on its
 * stdout. The child's stderr is diagnostics only.
 */

export type TelemetryClient = "ours" | "xmppjs" | "raw";

export interface TelemetryJob {
  cmd: "job";
  host: string;
  port: number;
  domain: string;
  user: string;
  password: string;
  resource: string;
  caFile: string;
  /** Pubsub service JID (Prosody's pubsub component). */
  service: string;
  /** The node this child publishes to (its own, so variants never share item history). */
  node: string;
  /** Device id written into every payload. */
  device: string;
  /** Node config sent at creation and as publish-options (pubsub#max_items). */
  maxItems: number;
  /** Readings per pubsub item (ours: batch.maxReadings; 1 = batching off). */
  batch: number;
  /** Publish requests outstanding at once (ours: publish.inFlight). The raw publisher ignores it. */
  inFlight: number;
  /** Readings published before the measured phase (node creation, warm caches). */
  warmupReadings: number;
  /** Readings in the measured phase (a multiple of batch). */
  readings: number;
  /** @xmpp/client only, diagnostic: TCP_NODELAY on its socket (it leaves Nagle on by default). */
  noDelay?: boolean;
  /** Ours only: the spool store. */
  spool?: { store: "memory" } | { store: "file"; fsync: "never" | "always"; dir: string };
}

export interface MemorySample {
  rss: number;
  heapUsed: number;
}

export type TelemetryEvent =
  | ({ event: "mem"; phase: "loaded" | "warm" | "after" } & MemorySample)
  | {
      event: "result";
      readings: number;
      items: number;
      /** First reading handed over -> last publish acknowledged by its IQ result. */
      wallMs: number;
      cpuUserUs: number;
      cpuSystemUs: number;
      /** Serialised size of one publish IQ of `batch` readings (without the id attribute). */
      iqBytes: number;
      /** process.resourceUsage().maxRSS at the end of the measured phase, bytes. */
      maxRss: number;
    }
  | { event: "done" }
  | { event: "error"; message: string };
