/** Test support for telemetry's unit tests and the integration tests that drive it. Not used at run time. */
export { PubsubFakeSession } from "./pubsub-fake-session.js";
export { settle } from "./settle.js";
