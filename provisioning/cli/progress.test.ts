import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { countStatuses, type JobCounts } from "../jobs/job.js";
import { describeCounts, ProgressView } from "./progress.js";

const counts = (over: Partial<JobCounts>): JobCounts => ({ ...countStatuses([]), ...over });

describe("job progress", () => {
  it("on a terminal: one bar rewritten in place, at most every 100 ms, always the last state", () => {
    const raw: string[] = [];
    let now = 0;
    const view = new ProgressView(
      { out: () => {}, err: () => {}, env: {}, ttyErr: (s) => raw.push(s) },
      10,
      "status",
      () => now,
    );
    view.update(counts({ pending: 10 }));
    now = 50;
    view.update(counts({ completed: 1, pending: 9 }));
    assert.equal(raw.length, 1, "throttled");
    now = 150;
    view.update(counts({ completed: 5, error: 1, pending: 4 }));
    now = 160;
    view.update(counts({ completed: 9, error: 1 }));
    view.end();
    assert.equal(raw.length, 4);
    // Carriage return and "erase line" first, so the bar is rewritten in place.
    assert.equal(
      raw[1],
      `\r\u001b[2Kstatus [${"#".repeat(14)}${".".repeat(10)}] 6/10  5 completed, 1 error, 4 pending`,
    );
    assert.match(raw[2]!, /\[#{24}\] 10\/10/, "the last state is drawn whatever the time");
    assert.equal(raw[3], "\n");
  });

  it("elsewhere: a plain line at every tenth, or every 10 s while something changes", () => {
    const lines: string[] = [];
    let now = 0;
    const view = new ProgressView(
      { out: () => {}, err: (s) => lines.push(s), env: {} },
      100,
      "set-sampling",
      () => now,
    );
    for (let done = 0; done <= 100; done++) view.update(counts({ completed: done, pending: 100 - done }));
    assert.equal(lines.length, 11);
    assert.equal(lines[10], "iot-fleet: set-sampling 100/100: 100 completed");
    view.update(counts({ completed: 100 }));
    now = 10_001;
    view.update(counts({ completed: 100 }));
    assert.equal(lines.length, 12);
    assert.equal(
      describeCounts(counts({ waiting: 2, "timed-out": 1 })),
      "1 timed out, 2 waiting for them to come online",
    );
  });
});
