import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { AgentError } from "../../kernel/errors.js";
import type { SessionEvents } from "../../xmpp/session.js";
import { CredentialStore } from "./credentials.js";
import { LoginRecovery, type RecoveryOutcome } from "./login-recovery.js";

const root = mkdtempSync(join(tmpdir(), "prov-recovery-"));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

/** The session as LoginRecovery sees it: events, the password it would log in with, prompt retries. */
class FakeRecoverableSession extends EventEmitter<SessionEvents> {
  password: string;
  retries = 0;
  constructor(password: string) {
    super();
    this.password = password;
  }
  setPassword(p: string): void {
    this.password = p;
  }
  retryNow(): void {
    this.retries++;
  }
  /** What the real session does on a refused login (a fault too once its retries are spent). */
  refuse(): void {
    const err = new AgentError("auth_failed", "authentication failed: not-authorized");
    this.emit("refused", err);
    this.emit("fault", err);
  }
  online(): void {
    this.emit("online", { resumed: false, jid: "dev@iot.test/agent" });
  }
}

function store(current: string, journalled?: string): CredentialStore {
  const s = new CredentialStore(join(root, `c${++n}`));
  s.writePassword(current);
  if (journalled !== undefined) s.beginRotation(journalled);
  return s;
}

function setup(current: string, journalled?: string, sessionPassword = current) {
  const credentials = store(current, journalled);
  const session = new FakeRecoverableSession(sessionPassword);
  const outcomes: RecoveryOutcome[] = [];
  const recovery = new LoginRecovery({
    session,
    credentials,
    sessionPassword,
    onSettled: (o) => outcomes.push(o),
  });
  return { credentials, session, recovery, outcomes };
}

describe("LoginRecovery (interrupted rotation)", () => {
  it("without a journal: nothing to resolve; a refused login changes nothing", () => {
    const { session, recovery } = setup("pw-a");
    assert.equal(recovery.start(), false);
    assert.equal(session.listenerCount("online"), 0);
    session.refuse();
    assert.equal(session.password, "pw-a");
    assert.equal(session.retries, 0);
    recovery.stop();
    assert.equal(session.listenerCount("refused"), 0);
  });

  it("a journal left while running (rotation answer never came): a refused re-login tries it at once", () => {
    const { credentials, session, recovery, outcomes } = setup("pw-old");
    recovery.start();
    credentials.beginRotation("pw-new"); // what rotateOwnPassword leaves after an iq_timeout
    session.refuse(); // the link dropped, resumption failed, the old password is refused
    assert.equal(session.password, "pw-new");
    assert.equal(session.retries, 1);
    session.online();
    assert.equal(credentials.readPassword(), "pw-new");
    assert.equal(credentials.pendingRotation(), undefined);
    assert.deepEqual(outcomes, ["committed-journalled"]);
  });

  it("current password refused -> switches to the journalled one, retries at once, commits it on login", () => {
    const { credentials, session, recovery, outcomes } = setup("pw-old", "pw-new");
    assert.equal(recovery.start(), true);
    assert.equal(session.password, "pw-old", "tries the current password first");
    session.refuse();
    assert.equal(session.password, "pw-new");
    assert.equal(session.retries, 1);
    session.online();
    assert.equal(credentials.readPassword(), "pw-new");
    assert.equal(credentials.pendingRotation(), undefined);
    assert.deepEqual(outcomes, ["committed-journalled"]);
    assert.equal(recovery.pending, false);
    assert.equal(session.listenerCount("online"), 0, "online listener removed once settled");
    recovery.stop();
    assert.equal(session.listenerCount("refused"), 0);
  });

  it("current password accepted -> the server never got the change: journal dropped", () => {
    const { credentials, session, recovery, outcomes } = setup("pw-old", "pw-new");
    recovery.start();
    session.online();
    assert.equal(credentials.readPassword(), "pw-old");
    assert.equal(credentials.pendingRotation(), undefined);
    assert.deepEqual(outcomes, ["kept-current"]);
  });

  it("both refused -> one prompt round only, then alternates at the session's slow pace; journal kept", () => {
    const { credentials, session, recovery, outcomes } = setup("pw-old", "pw-new");
    recovery.start();
    session.refuse();
    session.refuse();
    assert.equal(session.password, "pw-old", "back to the first candidate");
    assert.equal(session.retries, 1, "no prompt retry after a full round");
    session.refuse();
    assert.equal(session.password, "pw-new");
    assert.equal(session.retries, 1);
    assert.equal(credentials.pendingRotation(), "pw-new", "journal left for a person");
    assert.deepEqual(outcomes, []);
    // Someone fixes the server side; the next login with the journalled password settles it.
    session.online();
    assert.equal(credentials.readPassword(), "pw-new");
    assert.deepEqual(outcomes, ["committed-journalled"]);
  });

  it("ignores faults that are not refused logins", () => {
    const { session, recovery } = setup("pw-old", "pw-new");
    recovery.start();
    session.emit("fault", new AgentError("tls_cert_rejected", "bad certificate"));
    assert.equal(session.password, "pw-old");
    assert.equal(session.retries, 0);
  });

  it("leaves the journal alone when the session's password is not the store's", () => {
    const { credentials, session, recovery } = setup("pw-old", "pw-new", "from-env");
    assert.equal(recovery.start(), false);
    assert.equal(session.password, "from-env");
    assert.equal(session.listenerCount("refused"), 0);
    assert.equal(credentials.pendingRotation(), "pw-new");
  });

  it("a journal holding the current password is simply dropped", () => {
    const { credentials, recovery, outcomes } = setup("pw-same", "pw-same");
    assert.equal(recovery.start(), false);
    assert.equal(credentials.pendingRotation(), undefined);
    assert.equal(credentials.readPassword(), "pw-same");
    assert.deepEqual(outcomes, ["kept-current"]);
  });

  it("stop() detaches before anything settled", () => {
    const { credentials, session, recovery } = setup("pw-old", "pw-new");
    recovery.start();
    recovery.stop();
    assert.equal(session.listenerCount("refused"), 0);
    assert.equal(session.listenerCount("online"), 0);
    session.refuse();
    session.online();
    assert.equal(credentials.pendingRotation(), "pw-new");
  });
});
