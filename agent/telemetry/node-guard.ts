/**
 * Who owns a device's pubsub node, and who may read it.
 *
 * Ownership: on a server where other accounts may create nodes (ejabberd's default), another
 * account can create `devices/<id>/telemetry` before the device does. The device's create then
 * fails with <conflict/>, which looks just like "my node from an earlier run". So after every
 * create, and on every <conflict/>, the publisher asks for the node's affiliations (XEP-0060
 * 8.9.1, an owner-only request) and judges the answer here:
 *  - refused (forbidden, not-authorized, not-allowed): the device is not an owner;
 *  - the list does not show the device as an owner: not an owner (Prosody answers an admin
 *    device for any node, so the list, not the answer, is what counts);
 *  - another owner the config does not trust (`telemetry.publish.trustedOwners`) is listed;
 *  - feature-not-implemented: ownership cannot be verified.
 * Each is a PubsubError with code `pubsub_node_not_owned` (context: node, service, reason, owners,
 * condition). PEP nodes live on the device's own account, where nobody else can own them: the
 * publisher skips this check there.
 *
 * Readers: under the whitelist model (XEP-0060 4.5) only members may subscribe and fetch, so the
 * readers (operators' accounts plus `telemetry.publish.readers`) are made members and members no
 * longer in that set go back to "none" (owner, publisher and outcast entries are never touched).
 * Prosody 0.12 and ejabberd 23.01 keep the subscription of an entity whose affiliation went back
 * to "none" and go on delivering to it, so under whitelist the subscriptions of non-readers are
 * removed too, and before the affiliation change: Prosody 0.12 answers <forbidden/> to that change
 * (after applying it) when the entity still holds a subscription. Where the subscriptions cannot be
 * listed (ejabberd 23.01 PEP: feature-not-implemented) only the members being removed are
 * unsubscribed, one by one, and the result says so (`subscriptionsListed: false`).
 */
import type { Element } from "ltx";
import { type AgentError, isAgentError } from "../../kernel/errors.js";
import { PubsubError } from "./errors.js";
import {
  type AccessModel,
  type AffiliationEntry,
  buildAffiliationsRequest,
  buildAffiliationsSet,
  buildSubscriptionsRemoval,
  buildSubscriptionsRequest,
  parseAffiliations,
  parseSubscriptions,
  type SubscriptionEntry,
} from "./pubsub.js";
import type { SessionPort } from "./session-port.js";

/** Bare JID for comparisons: resource dropped, lower case (what servers list after nodeprep/nameprep for ASCII). */
export function bareOf(jid: string): string {
  const slash = jid.indexOf("/");
  return (slash === -1 ? jid : jid.slice(0, slash)).toLowerCase();
}

export type OwnershipFault = "not-owner" | "untrusted-owner" | "unverifiable";

export type OwnershipVerdict = { owned: true } | { owned: false; reason: OwnershipFault; owners: string[] };

/** Judges an affiliations list: `self` must be an owner and every other owner trusted. */
export function judgeOwnership(
  list: readonly AffiliationEntry[],
  self: string,
  trusted: ReadonlySet<string>,
): OwnershipVerdict {
  const owners = list.filter((a) => a.affiliation === "owner").map((a) => bareOf(a.jid));
  if (!owners.includes(self)) return { owned: false, reason: "not-owner", owners };
  const others = owners.filter((o) => o !== self && !trusted.has(o));
  return others.length > 0 ? { owned: false, reason: "untrusted-owner", owners: others } : { owned: true };
}

/** What servers answer to removing a subscription that does not exist (ejabberd 23.01, Prosody 0.12). */
const NOT_SUBSCRIBED = new Set(["bad-request", "unexpected-request", "item-not-found"]);

/** Stanza conditions that mean "you are not an owner of this node" to the owner-only request. */
const NOT_OWNER = new Set(["forbidden", "not-authorized", "not-allowed"]);

export interface ReadersPlan {
  /** Affiliation changes to send (members added, stale members set to "none"). */
  affiliations: AffiliationEntry[];
  /** Subscriptions to remove (under whitelist: of entities that are not readers). */
  unsubscribe: SubscriptionEntry[];
}

/**
 * What to change so the node's members are exactly `readers` (bare, lower case). Owners,
 * publishers and the device itself keep whatever they have; an outcast named as a reader becomes a
 * member (the config is the device's word on who reads). `subs` is given only under whitelist.
 */
export function planReaders(
  list: readonly AffiliationEntry[],
  subs: readonly SubscriptionEntry[] | undefined,
  readers: ReadonlySet<string>,
  self: string,
): ReadersPlan {
  const current = new Map(list.map((a) => [bareOf(a.jid), a]));
  const affiliations: AffiliationEntry[] = [];
  for (const r of readers) {
    if (r === self) continue;
    const a = current.get(r)?.affiliation;
    if (a === undefined || a === "none" || a === "outcast") affiliations.push({ jid: r, affiliation: "member" });
  }
  for (const a of list)
    if (a.affiliation === "member" && !readers.has(bareOf(a.jid)) && bareOf(a.jid) !== self)
      affiliations.push({ jid: a.jid, affiliation: "none" });
  // Who may stay subscribed: readers, the device, and entities with a higher affiliation.
  const keep = new Set([self, ...readers]);
  for (const a of list) if (a.affiliation === "owner" || a.affiliation === "publisher") keep.add(bareOf(a.jid));
  const unsubscribe = (subs ?? []).filter((s) => s.subscription !== "none" && !keep.has(bareOf(s.jid)));
  return { affiliations, unsubscribe };
}

export interface ReadersChange {
  added: string[];
  removed: string[];
  unsubscribed: string[];
  /** False when the server would not list the node's subscriptions (whitelist only asks). */
  subscriptionsListed: boolean;
}

export interface NodeGuardOptions {
  session: SessionPort;
  timeoutMs: number;
  /** Bare JIDs made members (operators' accounts and telemetry.publish.readers). */
  readers: readonly string[];
  /** Bare JIDs accepted as co-owners besides the device. */
  trustedOwners: readonly string[];
}

export class NodeGuard {
  private readonly readers: Set<string>;
  private readonly trusted: Set<string>;

  constructor(private readonly options: NodeGuardOptions) {
    this.readers = new Set(options.readers.map(bareOf));
    this.trusted = new Set(options.trustedOwners.map(bareOf));
  }

  /**
   * Checks that `self` owns `node` on `service` (a pubsub component, not PEP). Resolves with the
   * node's affiliations; rejects with PubsubError `pubsub_node_not_owned`, or with the request's own
   * error (item-not-found when the node is gone, iq_timeout, ...) when the answer says nothing about
   * ownership.
   */
  async verifyOwner(service: string, node: string, self: string): Promise<AffiliationEntry[]> {
    let list: AffiliationEntry[];
    try {
      list = parseAffiliations(await this.request(buildAffiliationsRequest(service, node)));
    } catch (err) {
      if (!isAgentError(err, "iq_error")) throw err;
      const condition = String(err.context.condition);
      if (NOT_OWNER.has(condition)) throw notOwned(service, node, "not-owner", [], err, condition);
      if (condition === "feature-not-implemented") throw notOwned(service, node, "unverifiable", [], err, condition);
      throw err;
    }
    const verdict = judgeOwnership(list, self, this.trusted);
    if (!verdict.owned) throw notOwned(service, node, verdict.reason, verdict.owners);
    return list;
  }

  /**
   * Brings the node's members (and, under whitelist, its subscriptions) in step with the readers.
   * `list`: the affiliations already fetched by verifyOwner (fetched here otherwise, e.g. on PEP).
   */
  async syncReaders(
    service: string | undefined,
    node: string,
    self: string,
    accessModel: AccessModel,
    list?: AffiliationEntry[],
  ): Promise<ReadersChange> {
    const affiliations = list ?? parseAffiliations(await this.request(buildAffiliationsRequest(service, node)));
    let subs: SubscriptionEntry[] | undefined;
    let subscriptionsListed = accessModel === "whitelist";
    if (subscriptionsListed) {
      try {
        subs = parseSubscriptions(await this.request(buildSubscriptionsRequest(service, node)));
      } catch (err) {
        if (!(isAgentError(err, "iq_error") && err.context.condition === "feature-not-implemented")) throw err;
        subscriptionsListed = false;
      }
    }
    const plan = planReaders(affiliations, subs, this.readers, self);
    // Subscriptions first: Prosody 0.12 refuses an affiliation change for an entity still subscribed.
    const unsubscribed: string[] = [];
    if (plan.unsubscribe.length > 0) {
      await this.request(buildSubscriptionsRemoval(service, node, plan.unsubscribe));
      unsubscribed.push(...plan.unsubscribe.map((x) => x.jid));
    }
    if (accessModel === "whitelist" && !subscriptionsListed)
      // Unlisted: unsubscribe the members on their way out, whether they hold a subscription or not.
      for (const a of plan.affiliations)
        if (a.affiliation === "none" && (await this.unsubscribeIfAny(service, node, a.jid))) unsubscribed.push(a.jid);
    if (plan.affiliations.length > 0) {
      try {
        await this.request(buildAffiliationsSet(service, node, plan.affiliations));
      } catch (err) {
        // Some servers answer an error after applying part of the delta: what counts is the list now.
        const now = parseAffiliations(await this.request(buildAffiliationsRequest(service, node)));
        const rest = planReaders(now, undefined, this.readers, self);
        if (rest.affiliations.length > 0) throw err;
      }
    }
    return {
      added: plan.affiliations.filter((a) => a.affiliation === "member").map((a) => a.jid),
      removed: plan.affiliations.filter((a) => a.affiliation === "none").map((a) => a.jid),
      unsubscribed,
      subscriptionsListed,
    };
  }

  /**
   * Removes `jid`'s subscription without knowing whether it has one. True when removed; false when
   * the server says there was none to remove (ejabberd: bad-request, Prosody: unexpected-request).
   */
  private async unsubscribeIfAny(service: string | undefined, node: string, jid: string): Promise<boolean> {
    try {
      await this.request(buildSubscriptionsRemoval(service, node, [{ jid, subscription: "subscribed" }]));
      return true;
    } catch (err) {
      if (isAgentError(err, "iq_error") && NOT_SUBSCRIBED.has(String(err.context.condition))) return false;
      throw err;
    }
  }

  private request(iq: Element): Promise<Element> {
    return this.options.session.request(iq, { timeoutMs: this.options.timeoutMs });
  }
}

function notOwned(
  service: string,
  node: string,
  reason: OwnershipFault,
  owners: string[],
  cause?: AgentError,
  condition?: string,
): PubsubError {
  const who =
    reason === "unverifiable"
      ? `its owner cannot be checked (${condition})`
      : reason === "untrusted-owner"
        ? `it has owners this device does not trust: ${owners.join(", ")}`
        : owners.length > 0
          ? `it is owned by ${owners.join(", ")}, not by this device`
          : `it is owned by another account (the server refuses this device its owner list: ${condition})`;
  return new PubsubError(
    "pubsub_node_not_owned",
    `pubsub node ${node} on ${service} is not this device's: ${who}`,
    { node, service, operation: "verify-owner", reason, owners, ...(condition ? { condition } : {}) },
    cause ? { cause } : undefined,
  );
}
