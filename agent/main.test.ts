/**
 * The composed agent without a server: simulated board, a session pointed at a closed port (it
 * keeps retrying), telemetry on. What matters here is stop(): whatever fails, the session is
 * stopped and the board's lines are released.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { AgentError, isAgentError } from "../kernel/errors.js";
import { silentLogger } from "../kernel/log.js";
import { parseConfig } from "./config/load.js";
import { type Agent, createAgent } from "./main.js";

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("createAgent: stop()", () => {
  let dir: string;
  let port: number;
  const agents: Agent[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "agent-main-"));
    port = await closedPort();
  });

  after(async () => {
    // Whatever a failed assertion left running must not keep the test process alive.
    for (const a of agents) {
      await a.session.stop();
      await a.board.stop();
      await a.sim?.stop();
    }
    rmSync(dir, { recursive: true, force: true });
  });

  async function startAgent(id: string): Promise<Agent> {
    const loaded = parseConfig(
      `device:
  id: ${id}
  dataDir: ${join(dir, id)}
xmpp:
  jid: ${id}@iot.test
  password: not-used
  server: 127.0.0.1:${port}
  reconnect: { initialDelayMs: 50, maxDelayMs: 200 }
operators:
  - jid: operator@iot.test
hardware: { gpio: sim, serial: sim }
board:
  outputs:
    relay: { source: gpio, line: 17 }
telemetry:
  spool: { store: memory }
`,
      join(dir, `${id}.yaml`),
    );
    const agent = await createAgent(loaded, { log: silentLogger });
    agents.push(agent);
    await agent.start();
    assert.equal(agent.sim!.gpio.isOpen(17), true, "the board holds its line once started");
    assert.notEqual(agent.session.state, "stopped");
    return agent;
  }

  it("a telemetry stop that throws still stops the session and releases the board's lines", async () => {
    const agent = await startAgent("stop-01");
    const telemetry = agent.telemetry!;
    const stopTelemetry = telemetry.stop.bind(telemetry);
    telemetry.stop = async () => {
      await stopTelemetry();
      throw new AgentError("spool_close_failed", "the spool could not be closed");
    };
    await assert.rejects(agent.stop(), (err: unknown) => {
      assert.ok(isAgentError(err, "agent_stop_failed"), `agent_stop_failed, got ${String(err)}`);
      assert.deepEqual(
        (err.context.failed as Array<{ step: string; error: { code: string } }>).map((f) => [f.step, f.error.code]),
        [["telemetry", "spool_close_failed"]],
      );
      return true;
    });
    assert.equal(agent.session.state, "stopped");
    assert.equal(agent.sim!.gpio.isOpen(17), false, "the board released its line");
  });

  it("every failing step is reported, in stop order, and the rest still stop", async () => {
    const agent = await startAgent("stop-02");
    agent.commands.stop = () => {
      throw new Error("commands would not stop");
    };
    const telemetry = agent.telemetry!;
    const stopTelemetry = telemetry.stop.bind(telemetry);
    telemetry.stop = async () => {
      await stopTelemetry();
      throw new AgentError("spool_close_failed", "the spool could not be closed");
    };
    const err = await agent.stop().then(
      () => assert.fail("stop() resolved"),
      (e: unknown) => e,
    );
    assert.ok(isAgentError(err, "agent_stop_failed"));
    assert.deepEqual(
      (err.context.failed as Array<{ step: string }>).map((f) => f.step),
      ["commands", "telemetry"],
    );
    assert.equal(agent.session.state, "stopped");
    assert.equal(agent.sim!.gpio.isOpen(17), false);
  });

  it("a clean stop resolves, and a second stop has nothing left to do", async () => {
    const agent = await startAgent("stop-03");
    await agent.stop();
    assert.equal(agent.session.state, "stopped");
    assert.equal(agent.sim!.gpio.isOpen(17), false);
    await agent.stop();
  });
});
