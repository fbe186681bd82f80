/**
 * The `telemetry` config section: every bound of sampling, batching, spooling and publishing,
 * with defaults. Documented in docs/spool.md. Node names and the pubsub service come from the
 * `pubsub` section (service, nodePrefix).
 */
import {
  arr,
  bool,
  bytes,
  def,
  type Infer,
  int,
  ms,
  obj,
  oneOf,
  record,
  refine,
  type Schema,
  str,
} from "../../kernel/schema-dsl.js";

/** A positive item count, or "max" for the server's own limit (YAML numbers arrive as strings via str()). */
const maxItemsSchema: Schema<number | "max"> = refine(str(), (v, ctx) =>
  v === "max" ? "max" : /^[1-9]\d{0,8}$/.test(v) ? Number(v) : ctx.fail('must be a positive number or "max"'),
);

/** One account (name@domain, no resource): a pubsub affiliation names an account, never a whole domain. */
const accountJid = () =>
  str({ pattern: /^[^@/\s"&'<>:]+@[^@/\s]+$/, patternHint: "an account's bare JID like dashboard@example.org" });

/** Where a spool keeps its batches; shared with the mirror's spool section (mqtt-mirror-config.ts). */
export const storeKindSchema = def(oneOf(["file", "memory"]), "file");
/** What a full spool does; shared with the mirror's spool section. */
export const overflowPolicySchema = def(oneOf(["drop-oldest", "reject-new"]), "drop-oldest");

/** The `telemetry.spool` section: one spool's store, bound and durability (docs/spool.md). */
export const spoolConfigSchema = obj({
  /** "file" (crash-safe, <device.dataDir>/telemetry/spool) or "memory" (lost on restart). */
  store: storeKindSchema,
  /** Upper bound of the spool on disk. */
  maxBytes: def(bytes({ min: 64 * 1024 }), 64 * 1024 * 1024),
  /** Segment file size; must be <= maxBytes / 4. */
  segmentBytes: def(bytes({ min: 4096 }), 1024 * 1024),
  /** Largest single batch record. */
  maxRecordBytes: def(bytes({ min: 1024 }), 1024 * 1024),
  overflow: overflowPolicySchema,
  fsync: def(oneOf(["always", "interval", "never"]), "always"),
  fsyncIntervalMs: def(ms({ min: 10 }), 1000),
});

export type SpoolConfig = Infer<typeof spoolConfigSchema>;

/**
 * What a spool is when nothing says otherwise: the defaults of the `telemetry.spool` section, so the
 * schema is their one source (a store built without a config, the mirror's file layout).
 */
export const SPOOL_DEFAULTS: Readonly<SpoolConfig> = Object.freeze(spoolConfigSchema.defaultValue!());

export const telemetryConfigSchema = obj(
  {
    /** Master switch: false = no sampler, no spool, no publisher. */
    enabled: def(bool(), true),
    sampler: obj({
      /** Per-channel interval overrides (ms; 0 = edges only), keyed by channel id. */
      intervals: def(record(int({ min: 0, max: 24 * 3600 * 1000 })), {}),
      /** Lowest interval set-sampling (or the overrides) may ask for. */
      minIntervalMs: def(ms({ min: 10 }), 100),
      maxIntervalMs: def(ms({ min: 1000 }), 24 * 3600 * 1000),
      /** A read that takes longer becomes an "error" reading. */
      readTimeoutMs: def(ms({ min: 10 }), 5000),
      /** How often digital inputs are read besides their edges (0 = edges only). */
      inputIntervalMs: def(ms(), 60_000),
    }),
    sequence: obj({
      /** Sequence numbers reserved per durable write of the high-water mark. */
      blockSize: def(int({ min: 1, max: 1_000_000 }), 1000),
    }),
    batch: obj({
      /** A batch (one pubsub item) holds at most this many readings... */
      maxReadings: def(int({ min: 1, max: 5000 }), 50),
      /** ...and is cut when its oldest reading is this old (also the longest a reading is in RAM only). */
      maxAgeMs: def(ms({ max: 3_600_000 }), 1000),
      /** Batches waiting for the spool before the oldest is dropped (a stalled disk). */
      maxQueuedBatches: def(int({ min: 1, max: 10_000 }), 16),
    }),
    spool: spoolConfigSchema,
    publish: obj({
      /** Concurrent publish requests. */
      inFlight: def(int({ min: 1, max: 256 }), 4),
      requestTimeoutMs: def(ms({ min: 100 }), 30_000),
      /** Send publish-options with each publish (PEP applies them; a service checks them). */
      publishOptions: def(bool(), true),
      persistItems: def(bool(), true),
      /** Items the telemetry node keeps: a number, or "max" for the server's limit. */
      maxItems: def(maxItemsSchema, 32),
      /**
       * Who may subscribe to and fetch the telemetry and status nodes (XEP-0060 4.5). whitelist: the
       * operators' accounts and `readers`, which the agent keeps as the nodes' members. open: every
       * account on the server (an opt-in). docs/protocol.md says how each server honours each model.
       */
      accessModel: def(oneOf(["open", "presence", "roster", "whitelist"]), "whitelist"),
      /** Accounts that read telemetry besides the operators (a dashboard collector, fleet admins). */
      readers: def(arr(accountJid(), { maxItems: 1000 }), []),
      /**
       * Accounts besides the device that may co-own its nodes (e.g. the admin who provisions them).
       * Any other owner, or a node the device does not own, is a security fault: nothing is published there.
       */
      trustedOwners: def(arr(accountJid(), { maxItems: 100 }), []),
      /**
       * The status item is published again this often while online (and whenever telemetry's state
       * changes), so a fleet inventory reads figures minutes old, not from the last login; 0: only
       * at login and on changes.
       */
      statusIntervalMs: def(ms({ max: 86_400_000 }), 900_000),
      retry: obj({
        initialDelayMs: def(ms({ min: 10 }), 1000),
        maxDelayMs: def(ms({ min: 100 }), 60_000),
        factor: def(int({ min: 1, max: 10 }), 2),
      }),
      /**
       * A batch the server refuses for good (forbidden, policy-violation, not-acceptable, ...) this
       * many times in a row, or for this long, moves to <dataDir>/telemetry/dead-letter.jsonl
       * (bounded by maxBytes; when full, publishing stays blocked and nothing is dropped).
       */
      deadLetter: obj({
        afterTries: def(int({ min: 1, max: 10_000 }), 10),
        afterMs: def(ms({ min: 1000 }), 3_600_000),
        maxBytes: def(int({ min: 4096 }), 8 * 1024 * 1024),
      }),
    }),
  },
  {
    check(v, ctx) {
      if (v.spool.segmentBytes * 4 > v.spool.maxBytes)
        ctx
          .at("spool")
          .at("segmentBytes")
          .fail(`must be <= spool.maxBytes / 4 (${Math.floor(v.spool.maxBytes / 4)})`);
      if (v.spool.maxRecordBytes > v.spool.segmentBytes)
        ctx.at("spool").at("maxRecordBytes").fail("must be <= spool.segmentBytes");
      if (v.sampler.minIntervalMs > v.sampler.maxIntervalMs)
        ctx.at("sampler").at("minIntervalMs").fail("must be <= sampler.maxIntervalMs");
    },
  },
);

export type TelemetryConfig = Exclude<ReturnType<typeof telemetryConfigSchema.parse>, symbol>;
