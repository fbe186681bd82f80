import assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";
import { FakeTimers } from "../../../kernel/timers.js";
import { StanzaError } from "../../../xmpp/stanza-error.js";
import { ENDED_IDS_KEPT, type SessionEnd, SessionStore, type StoredSession } from "./session-store.js";

const BOB = "bob@iot.test/slix";
const ALICE = "alice@iot.test/gajim";

describe("SessionStore", () => {
  let timers: FakeTimers;
  let ended: Array<[string, SessionEnd]>;
  let store: SessionStore<StoredSession>;
  let seq = 0;

  function session(requester: string, busy = false): StoredSession {
    const now = timers.now();
    return { id: `s${++seq}`, node: "configure", requester, started: now, lastActive: now, busy };
  }
  /** What the session flow does for a new session: admit, then add. */
  function open(requester: string): StoredSession {
    store.admit(requester);
    const s = session(requester);
    store.add(s);
    return s;
  }
  function refused(fn: () => void, condition: string, type: string): void {
    assert.throws(fn, (err: unknown) => err instanceof StanzaError && err.condition === condition && err.type === type);
  }

  beforeEach(() => {
    timers = new FakeTimers(5_000);
    ended = [];
    store = new SessionStore<StoredSession>({
      limits: { sessionTimeoutMs: 60_000, maxSessionsPerRequester: 2, maxSessions: 3 },
      timers,
      onEnded: (s, end) => ended.push([s.id, end]),
    });
  });

  it("ends a session after sessionTimeoutMs without a request, reports it once, and remembers its id", () => {
    const s = open(BOB);
    assert.equal(store.get(s.id), s);
    timers.advance(59_999);
    assert.equal(store.size, 1);
    timers.advance(1);
    assert.equal(store.size, 0);
    assert.equal(store.get(s.id), undefined);
    assert.ok(store.hasEnded(s.id));
    assert.deepEqual(ended, [[s.id, { action: "timeout", reason: "no request for 60000 ms" }]]);
    assert.equal(store.stats.expired, 1);
    assert.equal(timers.pendingCount, 0);
  });

  it("restarts the timeout on each request and tracks when the session was last used", () => {
    const s = open(BOB);
    timers.advance(50_000);
    store.touch(s);
    assert.equal(s.lastActive, 55_000);
    timers.advance(50_000);
    assert.equal(store.size, 1, "the first timeout no longer applies");
    timers.advance(10_000);
    assert.equal(store.size, 0);
    assert.equal(timers.pendingCount, 0, "the replaced timer was cancelled, not left to fire");
  });

  it("ends a session on request without a report, and cancels its timer", () => {
    const s = open(BOB);
    store.end(s);
    assert.equal(store.size, 0);
    assert.ok(store.hasEnded(s.id));
    assert.equal(timers.pendingCount, 0);
    store.end(s);
    store.touch(s);
    assert.equal(timers.pendingCount, 0, "touching an ended session does not bring it back");
    assert.deepEqual(ended, []);
  });

  it("evicts the requester's least recently used idle session to admit a new one, and reports it", () => {
    const a = open(BOB);
    timers.advance(10);
    const b = open(BOB);
    timers.advance(10);
    store.touch(a);
    const alices = open(ALICE);
    const c = open(BOB);
    assert.equal(store.get(b.id), undefined);
    assert.ok(store.hasEnded(b.id));
    assert.deepEqual(
      [a, c, alices].map((s) => store.get(s.id)),
      [a, c, alices],
    );
    assert.deepEqual(ended, [[b.id, { action: "evict", reason: "replaced by a new session (max 2 per requester)" }]]);
    assert.equal(store.stats.evicted, 1);
    assert.equal(timers.pendingCount, 3, "the evicted session's timer is gone");
  });

  it("never evicts a busy session: refuses not-allowed (wait) when all of the requester's are busy", () => {
    const a = open(BOB);
    const b = open(BOB);
    a.busy = true;
    b.busy = true;
    refused(() => store.admit(BOB), "not-allowed", "wait");
    assert.equal(store.size, 2);
    b.busy = false;
    store.admit(BOB);
    assert.equal(store.get(b.id), undefined, "the idle one made room");
    assert.equal(store.get(a.id), a);
  });

  it("refuses resource-constraint (wait) beyond maxSessions in total", () => {
    open(BOB);
    open(ALICE);
    open("carol@iot.test/x");
    refused(() => store.admit("dave@iot.test/x"), "resource-constraint", "wait");
    assert.deepEqual(ended, []);
  });

  it(`remembers the last ${ENDED_IDS_KEPT} ended ids only`, () => {
    for (let i = 0; i <= ENDED_IDS_KEPT; i++) store.remember(`run-${i}`);
    assert.equal(store.hasEnded("run-0"), false);
    assert.ok(store.hasEnded("run-1"));
    assert.ok(store.hasEnded(`run-${ENDED_IDS_KEPT}`));
    assert.equal(store.hasEnded("made-up"), false);
  });

  it("clear() drops every session and timer without reporting them", () => {
    open(BOB);
    open(ALICE);
    store.clear();
    assert.equal(store.size, 0);
    assert.equal(timers.pendingCount, 0);
    timers.advance(120_000);
    assert.deepEqual(ended, []);
  });
});
