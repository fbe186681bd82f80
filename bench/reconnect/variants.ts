/**
 * The login paths bench/reconnect.ts compares. Adding one is adding one entry to VARIANTS, e.g.
 *
 *   { name: "sasl2-fast", xmppConfig: { sasl2: { enabled: true, fast: true } },
 *     prosody: { extraModules: PROSODY_SASL2_MODULES, extraGlobalLua: sasl2PluginPaths } },
 *
 * The first entry is the baseline every ratio is taken against.
 */
import { join } from "node:path";
import { PROSODY_SASL2_MODULES, type ProsodyHandle, sasl2PluginPaths } from "../../test/harness/prosody.js";

/** A part of the `xmpp` config section as written in the agent's YAML, before parsing. */
export type RawXmppConfig = Record<string, unknown>;

/** What a variant may need from the bench to build its config. */
export interface VariantContext {
  /** A private directory for this variant (e.g. a FAST token file); removed at the end. */
  dir: string;
  prosody: ProsodyHandle;
}

export interface Variant {
  name: string;
  /** Deep-merged over the bench's base xmpp config (bench/reconnect/measure.ts baseXmppConfig). */
  xmppConfig: RawXmppConfig | ((ctx: VariantContext) => RawXmppConfig);
  /**
   * Server side the variant needs. Variants with the same server settings share one Prosody;
   * different settings get their own, one after another, so the baseline is measured against a
   * server that offers nothing newer (the session's defaults take what is offered).
   */
  prosody?: { extraModules?: string[]; extraGlobalLua?: string };
  /** Runs once after the account exists, before the variant's warm-up login. */
  setup?(prosody: ProsodyHandle): Promise<void> | void;
}

/**
 * One server for every variant: Prosody 0.12 with Debian's SASL2 modules and the shipped shim, so
 * the only difference is what the client asks for.
 */
const SASL2_PROSODY = { extraModules: PROSODY_SASL2_MODULES, extraGlobalLua: sasl2PluginPaths };

export const VARIANTS: readonly Variant[] = [
  // STARTTLS, SASL (SCRAM), stream restart, bind, XEP-0198 enable; a resumption replaces bind +
  // enable by <resume/>. What every server without SASL2 gets (ejabberd 23.01, stock Prosody 0.12).
  { name: "classic", xmppConfig: { sasl2: { enabled: false } }, prosody: SASL2_PROSODY },
  // SASL2 with a FAST token (one round trip instead of SCRAM's two, no stream restart); bind and
  // enable, or resume, the classic way after it (Prosody 0.12 cannot do them inline).
  {
    name: "sasl2-fast",
    xmppConfig: ({ dir }) => ({ sasl2: { enabled: true, fast: true, tokenFile: join(dir, "fast-token.json") } }),
    prosody: SASL2_PROSODY,
  },
  // The same with Bind2: the resource bound inside authentication (the server picks it).
  {
    name: "sasl2-fast-bind2",
    xmppConfig: ({ dir }) => ({
      sasl2: { enabled: true, fast: true, bind2: true, tokenFile: join(dir, "fast-token.json") },
    }),
    prosody: SASL2_PROSODY,
  },
];
