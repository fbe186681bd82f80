/** Test support for everything that talks to an XmppSession: see kit.ts. Not used at run time. */
export { KitClock, settle } from "./clock.js";
export { FAKE_TLS_FINISHED, FakeLink } from "./fake-link.js";
export {
  FakeServer,
  type FakeServerOptions,
  type LoginOutcome,
  type LoginScript,
  type ServerWire,
  STREAM_END,
} from "./fake-server.js";
export { kitConfig, type SessionKit, type SessionKitOptions, sessionKit } from "./kit.js";
