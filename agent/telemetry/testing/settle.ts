import { settle as settleTurns } from "../../../xmpp/testing/index.js";

/**
 * Lets queued promise callbacks run. A reading travels through more hops here (batcher, spool,
 * publisher, session) than inside the session alone, so the default is twice the session kit's.
 */
export function settle(turns = 20): Promise<void> {
  return settleTurns(turns);
}
