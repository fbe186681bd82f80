/**
 * Scenario files (docs/scenarios.md): YAML that describes a simulated board (firmware version,
 * sensors with their curves, actuators) and a timeline of values and faults: sensor disconnect,
 * stuck or frozen values, noise on the line, corrupt frames, slow or missing answers, and
 * unplug/replug of the serial device. Validated with the agent's config DSL, so a mistake is
 * reported with its key and line.
 */
import { isMap, isScalar, isSeq, LineCounter, type Node as YamlNode, parseDocument } from "yaml";
import {
  arr,
  Ctx,
  def,
  formatPath,
  type Infer,
  INVALID,
  int,
  ms,
  num,
  obj,
  oneOf,
  opt,
  record,
  str,
} from "../kernel/schema-dsl.js";
import { AgentError, describeError } from "../kernel/errors.js";
import { type Logger, silentLogger } from "../kernel/log.js";
import { realTimers, type TimerHandle, type Timers } from "../kernel/timers.js";
import { SimulatedMcu } from "./mcu.js";
import type { LinkControl } from "./pty-sim.js";
import { seededRandom } from "./random.js";

export const SCENARIO_ACTIONS = [
  "set",
  "disconnect",
  "reconnect",
  "stuck",
  "unstuck",
  "freeze",
  "unfreeze",
  "garbage",
  "corrupt",
  "slow",
  "mute",
  "unmute",
  "unplug",
  "replug",
] as const;
export type ScenarioAction = (typeof SCENARIO_ACTIONS)[number];

const SENSOR_ACTIONS: readonly ScenarioAction[] = [
  "set",
  "disconnect",
  "reconnect",
  "stuck",
  "unstuck",
  "freeze",
  "unfreeze",
];

const sensorName = () => str({ pattern: /^[\x21-\x7e]{1,32}$/, patternHint: "1-32 printable ASCII characters" });

const stepSchema = obj(
  {
    /** ms after the scenario starts (or after each repeat). */
    at: ms(),
    action: oneOf(SCENARIO_ACTIONS),
    sensor: opt(sensorName()),
    value: opt(num()),
    /** garbage: how many random bytes to put on the line. */
    bytes: opt(int({ min: 1, max: 16 * 1024 * 1024 })),
    /** corrupt: how many answers go out with a bad CRC. */
    frames: opt(int({ min: 1, max: 1_000_000 })),
    /** slow: delay before each answer (0 restores prompt answers). */
    delayMs: opt(ms({ max: 600_000 })),
  },
  {
    check(v, ctx) {
      const needs = (key: "sensor" | "value" | "bytes" | "frames" | "delayMs") => {
        if (v[key] === undefined) ctx.at(key).fail(`is required for action ${v.action}`);
      };
      if (SENSOR_ACTIONS.includes(v.action)) needs("sensor");
      if (v.action === "set") needs("value");
      if (v.action === "garbage") needs("bytes");
      if (v.action === "corrupt") needs("frames");
      if (v.action === "slow") needs("delayMs");
    },
  },
);

export const scenarioSchema = obj(
  {
    name: def(str({ maxLength: 200 }), "unnamed scenario"),
    /** Seed of the random walks and garbage, for a reproducible run. Unset: random. */
    seed: opt(int({ min: 0, max: 0xffffffff })),
    firmware: def(str({ minLength: 1, maxLength: 64 }), "iot-sim-mcu 1.0.0"),
    /** framed: answer requests (docs/serial-protocol.md); line: print `name=value` lines. */
    protocol: def(oneOf(["framed", "line"]), "framed"),
    /** line protocol: how often a line is printed. */
    lineIntervalMs: def(ms({ min: 10 }), 1000),
    sensors: def(
      record(
        obj({
          unit: def(str({ maxLength: 32 }), ""),
          start: num(),
          walk: def(num({ min: 0 }), 0),
          min: opt(num()),
          max: opt(num()),
          periodMs: def(ms({ min: 1 }), 1000),
        }),
        { keyPattern: /^[\x21-\x7e]{1,32}$/ },
      ),
      {
        temperature: { unit: "°C", start: 21.5, walk: 0.05, min: -20, max: 60, periodMs: 1000 },
        humidity: { unit: "%", start: 45, walk: 0.2, min: 0, max: 100, periodMs: 1000 },
      },
    ),
    /** Actuator names and their initial values. */
    actuators: def(record(num(), { keyPattern: /^[\x21-\x7e]{1,32}$/ }), { fan: 0, heater: 0 }),
    /** Replay the steps every this many ms; unset: play them once. */
    repeatEveryMs: opt(ms({ min: 1 })),
    /**
     * When `at: 0` is. run: when the simulator starts. first-request: when the board gets its first
     * request, i.e. when an agent is talking to it, however long it took to start (framed only).
     */
    startOn: def(oneOf(["run", "first-request"]), "run"),
    steps: def(arr(stepSchema, { maxItems: 10_000 }), []),
  },
  {
    check(v, ctx) {
      if (v.startOn === "first-request" && v.protocol === "line")
        ctx.at("startOn").fail("first-request needs protocol framed: a line-protocol board gets no requests");
      v.steps.forEach((s, i) => {
        if (s.sensor !== undefined && !(s.sensor in v.sensors))
          ctx
            .at("steps")
            .at(i)
            .at("sensor")
            .fail(`names no sensor in sensors (have: ${Object.keys(v.sensors).join(", ")})`);
        if (v.repeatEveryMs !== undefined && s.at >= v.repeatEveryMs)
          ctx.at("steps").at(i).at("at").fail(`must be < repeatEveryMs (${v.repeatEveryMs})`);
      });
    },
  },
);

export type Scenario = Exclude<Infer<typeof scenarioSchema>, symbol>;
export type ScenarioStep = Scenario["steps"][number];

export interface ScenarioProblem {
  path: string;
  message: string;
  line?: number;
}

export class ScenarioError extends AgentError {}

/** Parses and validates scenario YAML; throws ScenarioError listing every problem with key and line. */
export function parseScenario(text: string, file = "scenario.yaml"): Scenario {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const fail = (problems: ScenarioProblem[]): never => {
    const lines = problems.map((p) => `  ${file}${p.line ? `:${p.line}` : ""}: ${p.path}: ${p.message}`).join("\n");
    throw new ScenarioError("scenario_invalid", `scenario ${file} is invalid:\n${lines}`, { file, problems });
  };
  if (doc.errors.length > 0)
    fail(
      doc.errors.map((e) => ({
        path: "(yaml)",
        message: e.message.split("\n")[0] ?? e.message,
        line: lc.linePos(e.pos[0]).line,
      })),
    );
  const ctx = new Ctx();
  const parsed = scenarioSchema.parse(doc.toJS() ?? {}, ctx);
  if (parsed === INVALID || ctx.issues.length > 0) {
    fail(
      ctx.issues.map((i) => {
        let line: number | undefined;
        for (let n = i.path.length; n >= 0 && line === undefined; n--) {
          const node = doc.getIn(i.path.slice(0, n), true) as YamlNode | undefined;
          if (node && (isScalar(node) || isMap(node) || isSeq(node)) && node.range)
            line = lc.linePos(node.range[0]).line;
        }
        return line === undefined
          ? { path: formatPath(i.path), message: i.message }
          : { path: formatPath(i.path), message: i.message, line };
      }),
    );
  }
  return parsed as Scenario;
}

/** A SimulatedMcu configured as the scenario describes (seeded if the scenario has a seed). */
export function createScenarioMcu(
  scenario: Scenario,
  deps: { timers?: Timers; random?: () => number } = {},
): SimulatedMcu {
  const random = deps.random ?? (scenario.seed !== undefined ? seededRandom(scenario.seed) : Math.random);
  const sensors = Object.fromEntries(
    Object.entries(scenario.sensors).map(([name, s]) => [
      name,
      {
        unit: s.unit,
        start: s.start,
        walk: s.walk,
        periodMs: s.periodMs,
        ...(s.min !== undefined ? { min: s.min } : {}),
        ...(s.max !== undefined ? { max: s.max } : {}),
      },
    ]),
  );
  return new SimulatedMcu({
    firmware: scenario.firmware,
    sensors,
    actuators: scenario.actuators,
    random,
    timers: deps.timers ?? realTimers,
  });
}

export interface ScenarioRunnerOptions {
  scenario: Scenario;
  mcu: SimulatedMcu;
  /** Needed for unplug/replug steps; without it those steps are logged and skipped. */
  link?: LinkControl;
  timers?: Timers;
  logger?: Logger;
  /** Called after each step ran (tests and the CLI's progress output). */
  onStep?: (step: ScenarioStep, error?: unknown) => void;
}

/** Plays a scenario's steps on the MCU and the link, in order, on injected timers. */
export class ScenarioRunner {
  private timers: TimerHandle[] = [];
  private repeat: TimerHandle | undefined;
  private chain: Promise<void> = Promise.resolve();
  private running = false;
  private readonly clock: Timers;
  private readonly logger: Logger;

  constructor(private readonly options: ScenarioRunnerOptions) {
    this.clock = options.timers ?? realTimers;
    this.logger = (options.logger ?? silentLogger).child({ component: "scenario" });
  }

  /** Starts the timeline now, or at the board's first request when the scenario says startOn: first-request. */
  start(): void {
    if (this.running) return;
    this.running = true;
    if (this.options.scenario.startOn === "first-request") {
      this.logger.info("scenario waits for the board's first request");
      this.options.mcu.onFirstRequest(() => {
        if (this.running) this.begin();
      });
      return;
    }
    this.begin();
  }

  private begin(): void {
    this.schedule();
    const every = this.options.scenario.repeatEveryMs;
    if (every !== undefined) this.repeat = this.clock.setInterval(() => this.schedule(), every);
  }

  /** Cancels future steps; resolves when a step in progress has finished. */
  async stop(): Promise<void> {
    this.running = false;
    this.repeat?.cancel();
    this.repeat = undefined;
    for (const t of this.timers) t.cancel();
    this.timers = [];
    await this.chain;
  }

  private schedule(): void {
    // Steps are all < repeatEveryMs, so the previous round's handles have fired: drop them (bounded list).
    this.timers = [];
    for (const step of this.options.scenario.steps) {
      this.timers.push(
        this.clock.setTimeout(() => {
          this.chain = this.chain.then(() => this.run(step));
        }, step.at),
      );
    }
  }

  private async run(step: ScenarioStep): Promise<void> {
    if (!this.running) return;
    const { mcu, link } = this.options;
    let error: unknown;
    try {
      switch (step.action) {
        case "set":
          mcu.setSensor(step.sensor!, step.value!);
          break;
        case "disconnect":
        case "reconnect":
          mcu.setSensorFault(step.sensor!, "disconnected", step.action === "disconnect");
          break;
        case "stuck":
        case "unstuck":
          mcu.setSensorFault(step.sensor!, "stuck", step.action === "stuck");
          break;
        case "freeze":
        case "unfreeze":
          mcu.setSensorFault(step.sensor!, "frozen", step.action === "freeze");
          break;
        case "garbage":
          await mcu.sendGarbage(step.bytes!);
          break;
        case "corrupt":
          mcu.corruptNextFrames(step.frames!);
          break;
        case "slow":
          mcu.setResponseDelay(step.delayMs!);
          break;
        case "mute":
        case "unmute":
          mcu.setMuted(step.action === "mute");
          break;
        case "unplug":
        case "replug":
          if (!link) {
            this.logger.warn("scenario step needs a link; skipped", { action: step.action });
            break;
          }
          await (step.action === "unplug" ? link.unplug() : link.replug());
          break;
      }
      this.logger.info("scenario step", { ...step });
    } catch (err) {
      error = err;
      this.logger.error("scenario step failed", { action: step.action, error: describeError(err) });
    }
    this.options.onStep?.(step, error);
  }
}
