/** The agent's name and version, reported in XEP-0092, caps, status and logs. Kept in step with package.json by a test. */
export const AGENT_NAME = "xmpp-iot-agent";
export const AGENT_VERSION = "0.1.0";
