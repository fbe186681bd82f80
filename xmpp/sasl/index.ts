/** SASL for the XMPP session: mechanisms over raw bytes; the session does the XML and base64. */
export { DEFAULT_CACHE_ENTRIES, SaltedPasswordCache } from "./cache.js";
export { SaslError, type SaslErrorCode } from "./errors.js";
export { ExternalMechanism } from "./external.js";
export {
  bestHtMechanism,
  HT_MECHANISMS,
  HtMechanism,
  type HtMechanismName,
  htBindingType,
  isHtMechanism,
} from "./ht.js";
export { PlainMechanism, type PlainOptions } from "./plain.js";
export { escapeSaslName, saslprep } from "./saslprep.js";
export {
  MAX_SCRAM_ITERATIONS,
  type Pbkdf2Fn,
  RECOMMENDED_MIN_ITERATIONS,
  type ScramChannelBinding,
  type ScramHash,
  ScramMechanism,
  type ScramOptions,
  scramMechanismName,
} from "./scram.js";
export { DEFAULT_SASL_PREFERENCES, type SelectOptions, SUPPORTED_MECHANISMS, selectMechanism } from "./select.js";
export {
  CHANNEL_BINDING_TYPES,
  type ChannelBinding,
  type ChannelBindingType,
  type SaslCredentials,
  type SaslMechanism,
} from "./types.js";
