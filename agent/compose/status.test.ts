import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FakeTimers } from "../../kernel/timers.js";
import type { SessionStats } from "../../xmpp/session.js";
import type { BoardHealthLike } from "../commands/hal-adapter.js";
import { AGENT_VERSION } from "../version.js";
import { type StatusDeps, statusSource, type TelemetryStatusLike } from "./status.js";

function sessionStats(over: Partial<SessionStats> = {}): SessionStats {
  return {
    state: "online",
    jid: "dev-01@iot.test/agent",
    connects: 3,
    resumes: 1,
    resumeFailures: 0,
    disconnects: 2,
    stanzasIn: 40,
    stanzasOut: 50,
    stanzasSkipped: 4,
    inbound: { droppedFromOperators: 1, droppedFromStrangers: 7, topDropped: undefined, sendersTracked: 2 },
    strangerRepliesDropped: 5,
    queued: 0,
    unacked: 6,
    smEnabled: true,
    mechanism: "SCRAM-SHA-256",
    endpoint: undefined,
    lastError: undefined,
    onlineSince: 12_000,
    ...over,
  };
}

const board: BoardHealthLike = {
  gpioLines: () => [{ id: "relay", device: "gpio:sim/17", direction: "out" }],
  stats: () => ({}),
  mqtt: () => undefined,
};

const telemetry: TelemetryStatusLike = {
  status: () => ({
    service: "pubsub.iot.test",
    nodes: { telemetry: "devices/dev-01/telemetry", status: "devices/dev-01/status" },
    spool: { readings: 42, droppedReadings: 3 },
  }),
  stateText: () => "publishing",
};

const MEMORY = {
  rssBytes: 30_000_000,
  heapUsedBytes: 9_000_000,
  heapTotalBytes: 12_000_000,
  externalBytes: 2_000_000,
  arrayBuffersBytes: 500_000,
  limitBytes: 100_663_296,
};

function deps(over: Partial<StatusDeps> = {}): StatusDeps {
  const timers = new FakeTimers(10_000);
  timers.advance(61_400);
  return {
    session: { stats: () => sessionStats() },
    telemetry,
    board,
    firmwareVersion: () => "mcu-fw 1.4",
    server: "xmpp.example:5222",
    startedAt: 10_000,
    timers,
    memory: () => MEMORY,
    ...over,
  };
}

describe("statusSource", () => {
  it("reports the session, telemetry, firmware and hardware as they are when asked", async () => {
    const s = await statusSource(deps()).snapshot();
    assert.deepEqual(s, {
      uptimeS: 61,
      agentVersion: AGENT_VERSION,
      firmwareVersion: "mcu-fw 1.4",
      memory: MEMORY,
      link: { state: "online", since: 12_000, server: "xmpp.example:5222" },
      streamManagement: { enabled: true, resumes: 1, unacked: 6 },
      reconnects: 2,
      inbound: { skipped: 4, droppedFromStrangers: 7, droppedFromOperators: 1, strangerRepliesDropped: 5 },
      spool: { depth: 42, drops: 3 },
      telemetry: "publishing",
      pubsub: { service: "pubsub.iot.test", nodes: ["devices/dev-01/telemetry", "devices/dev-01/status"] },
      hardware: [
        { id: "gpio", label: "GPIO", state: "1 line held: relay (gpio:sim/17, out)", activity: [], problems: [] },
      ],
    });
  });

  it("leaves out what is not known: no firmware answer, offline, no server set, no telemetry", async () => {
    const s = await statusSource(
      deps({
        session: {
          stats: () =>
            sessionStats({
              state: "waiting",
              onlineSince: undefined,
              inbound: {
                droppedFromOperators: 0,
                droppedFromStrangers: 9,
                topDropped: { sender: "x@evil.test", dropped: 9 },
                sendersTracked: 1,
              },
            }),
        },
        telemetry: undefined,
        firmwareVersion: () => undefined,
        server: undefined,
      }),
    ).snapshot();
    assert.equal("firmwareVersion" in s, false);
    assert.deepEqual(s.link, { state: "waiting" });
    assert.deepEqual(s.inbound?.topDropped, { sender: "x@evil.test", dropped: 9 });
    for (const key of ["spool", "telemetry", "pubsub"]) assert.equal(key in s, false, key);
  });

  it("telemetry that has not started yet (no status) adds nothing", async () => {
    const s = await statusSource(
      deps({ telemetry: { status: () => undefined, stateText: () => "stopped" } }),
    ).snapshot();
    assert.equal("spool" in s, false);
    assert.equal("telemetry" in s, false);
  });
});
