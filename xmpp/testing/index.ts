/**
 * Test support for everything that talks to an XmppSession. Not used at run time.
 * - kit.ts: a real XmppSession over in-memory links to a scripted server, on a manual clock.
 * - fake-session.ts: a stand-in for the session, for code that only uses it (telemetry, provisioning).
 */
export { KitClock, settle } from "./clock.js";
export { FAKE_TLS_FINISHED, FakeLink } from "./fake-link.js";
export { type Answer, FakeSession, type HeldRequest, iqError, type Responder } from "./fake-session.js";
export {
  FakeServer,
  type FakeServerOptions,
  type LoginOutcome,
  type LoginScript,
  type ServerWire,
  STREAM_END,
} from "./fake-server.js";
export { kitConfig, type SessionKit, type SessionKitOptions, sessionKit } from "./kit.js";
