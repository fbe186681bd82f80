import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { DriverError } from "../types.js";
import type { Bit } from "./backend.js";
import { classifyOnoffLoadError, type OnoffGpioLike, OnoffGpioBackend } from "./onoff-backend.js";

const root = mkdtempSync(join(tmpdir(), "onoff-sysfs-"));
after(() => rmSync(root, { recursive: true, force: true }));
mkdirSync(join(root, "gpiochip512"));
writeFileSync(join(root, "gpiochip512", "base"), "512\n");
writeFileSync(join(root, "gpiochip512", "label"), "pinctrl-bcm2711\n");
writeFileSync(join(root, "gpiochip512", "ngpio"), "58\n");

class FakeOnoff implements OnoffGpioLike {
  value: Bit = 0;
  unexported = false;
  cbs = new Set<(err: Error | null | undefined, v: Bit) => void>();
  constructor(
    readonly n: number,
    readonly dir: string,
    readonly edge: string,
  ) {
    if (dir === "high") this.value = 1;
  }
  async read(): Promise<Bit> {
    return this.value;
  }
  async write(v: Bit): Promise<void> {
    this.value = v;
  }
  watch(cb: (err: Error | null | undefined, v: Bit) => void): void {
    this.cbs.add(cb);
  }
  unwatch(cb?: (err: Error | null | undefined, v: Bit) => void): void {
    if (cb) this.cbs.delete(cb);
    else this.cbs.clear();
  }
  unexport(): void {
    this.unexported = true;
  }
}

describe("OnoffGpioBackend (with a fake onoff and a fake sysfs tree)", () => {
  it("exports the offset sysfs number and enforces direction, busy and closed rules", async () => {
    const made: FakeOnoff[] = [];
    const backend = new OnoffGpioBackend({
      sysfsRoot: root,
      accessible: true,
      gpioFactory: (n, d, e) => {
        const g = new FakeOnoff(n, d, e);
        made.push(g);
        return g;
      },
    });
    const out = await backend.open({ line: 17, direction: "out", initial: 1 });
    assert.equal(made[0]!.n, 529);
    assert.equal(made[0]!.dir, "high");
    assert.equal(out.device, "gpio:pinctrl-bcm2711/17");
    await assert.rejects(
      backend.open({ line: 17, direction: "out" }),
      (e: unknown) => e instanceof DriverError && e.code === "gpio_line_busy",
    );
    const inp = await backend.open({ line: 27, direction: "in", edge: "both" });
    assert.equal(made[1]!.edge, "both");
    await assert.rejects(inp.write(1), (e: unknown) => e instanceof DriverError && e.code === "gpio_wrong_direction");
    const seen: Bit[] = [];
    const off = inp.watch((v) => seen.push(v));
    for (const cb of made[1]!.cbs) cb(null, 1);
    off();
    assert.deepEqual(seen, [1]);
    await out.close();
    assert.equal(made[0]!.unexported, true);
    await assert.rejects(out.read(), (e: unknown) => e instanceof DriverError && e.code === "gpio_unexported");
    // Closed lines can be opened again.
    await (await backend.open({ line: 17, direction: "out" })).close();
  });

  it("refuses to open anything where GPIO is not accessible", async () => {
    const backend = new OnoffGpioBackend({ accessible: false });
    await assert.rejects(
      backend.open({ line: 17, direction: "out" }),
      (e: unknown) => e instanceof DriverError && e.code === "gpio_unavailable",
    );
  });

  it("tells an install that skipped onoff (no compiler) from a broken build, each with its fix", async () => {
    const notFound = (message: string) => Object.assign(new Error(message), { code: "MODULE_NOT_FOUND" });
    const skipped = classifyOnoffLoadError(
      notFound("Cannot find module 'onoff'\nRequire stack:\n- /opt/iot-agent/dist/x.mjs"),
    );
    assert.equal(skipped.state, "not-installed");
    const backend = new OnoffGpioBackend({ availability: skipped });
    assert.equal(backend.accessible, false);
    await assert.rejects(
      backend.open({ line: 17, direction: "out" }),
      (e: unknown) =>
        e instanceof DriverError &&
        e.code === "gpio_unavailable" &&
        /onoff is not installed/.test(e.message) &&
        /apt-get install make g\+\+ python3/.test(e.message) &&
        /npm ci --omit=dev/.test(e.message),
    );
    // onoff present, its addon missing or built for another Node.js: rebuild, not reinstall.
    const noAddon = classifyOnoffLoadError(notFound("Cannot find module '../build/Release/epoll.node'"));
    assert.equal(noAddon.state, "broken");
    const abi = classifyOnoffLoadError(new Error("was compiled against a different Node.js version"));
    assert.equal(abi.state, "broken");
    assert.match(abi.state === "broken" ? abi.reason : "", /npm rebuild epoll/);
  });
});
