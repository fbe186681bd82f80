/**
 * MQTT failures. `context.broker` names the broker URL (never credentials), `context.topic` the
 * topic and `context.output`/`context.channel` the board entry when there is one.
 */
import { AgentError } from "../../kernel/errors.js";

export type MqttErrorCode =
  /** Not connected to the broker right now; nothing was sent. */
  | "mqtt_offline"
  /** maxInFlight publishes already wait for their PUBACK; nothing was sent. */
  | "mqtt_busy"
  /** The broker refused the publish or the connection closed before its PUBACK (it may have arrived). */
  | "mqtt_publish_failed"
  /** The device did not report the commanded state within confirmTimeoutMs. */
  | "mqtt_confirm_timeout"
  /** The output's state is not known yet (no state message, no command sent). */
  | "mqtt_state_unknown"
  /** A credentials/TLS file named in the config could not be read. */
  | "mqtt_config"
  | "mqtt_not_started"
  /** A newer set() on the same output replaced this one before it was confirmed. */
  | "mqtt_superseded";

export class MqttError extends AgentError {
  constructor(
    code: MqttErrorCode,
    message: string,
    context: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(code, message, context, options);
  }
}
