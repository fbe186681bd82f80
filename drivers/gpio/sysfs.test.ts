import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { DriverError } from "../types.js";
import { listSysfsChips, resolveLine, selectChip } from "./sysfs.js";

const roots: string[] = [];
after(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

/** A fake /sys/class/gpio with the given chips. */
function fakeSysfs(chips: Array<{ base: number; label: string; ngpio: number }>): string {
  const root = mkdtempSync(join(tmpdir(), "sysfs-gpio-"));
  roots.push(root);
  writeFileSync(join(root, "export"), "");
  for (const c of chips) {
    const dir = join(root, `gpiochip${c.base}`);
    mkdirSync(dir);
    writeFileSync(join(dir, "base"), `${c.base}\n`);
    writeFileSync(join(dir, "label"), `${c.label}\n`);
    writeFileSync(join(dir, "ngpio"), `${c.ngpio}\n`);
  }
  return root;
}

describe("sysfs line resolution", () => {
  it("resolves BCM 17 to 529 on a kernel >= 6.6 Pi 4 (base 512)", async () => {
    const root = fakeSysfs([
      { base: 512, label: "pinctrl-bcm2711", ngpio: 58 },
      { base: 570, label: "raspberrypi-exp-gpio", ngpio: 8 },
    ]);
    const chips = await listSysfsChips(root);
    assert.deepEqual(
      chips.map((c) => c.base),
      [512, 570],
    );
    assert.equal(resolveLine(chips, 17).sysfsNumber, 529);
  });

  it("resolves against the RP1 header chip on a Pi 5 whatever its base", async () => {
    const root = fakeSysfs([
      { base: 512, label: "gpio-brcmstb@107d508500", ngpio: 32 },
      { base: 571, label: "pinctrl-rp1", ngpio: 54 },
    ]);
    assert.equal(resolveLine(await listSysfsChips(root), 17).sysfsNumber, 588);
  });

  it("keeps base 0 on older kernels and honours an explicit chip label", async () => {
    const chips = await listSysfsChips(
      fakeSysfs([
        { base: 0, label: "pinctrl-bcm2835", ngpio: 54 },
        { base: 100, label: "mcp23017", ngpio: 16 },
      ]),
    );
    assert.equal(resolveLine(chips, 17).sysfsNumber, 17);
    assert.equal(resolveLine(chips, 3, "mcp23017").sysfsNumber, 103);
  });

  it("fails with typed errors naming what exists", async () => {
    const chips = await listSysfsChips(
      fakeSysfs([
        { base: 0, label: "a", ngpio: 8 },
        { base: 8, label: "b", ngpio: 8 },
      ]),
    );
    assert.throws(
      () => selectChip(chips),
      (e: unknown) => e instanceof DriverError && e.code === "gpio_no_chip" && /a \(gpiochip0/.test(e.message),
    );
    assert.throws(
      () => resolveLine(chips, 8, "a"),
      (e: unknown) => e instanceof DriverError && e.code === "gpio_line_out_of_range",
    );
    assert.throws(
      () => selectChip(chips, "zz"),
      (e: unknown) => e instanceof DriverError && e.code === "gpio_no_chip",
    );
    await assert.rejects(
      listSysfsChips(join(tmpdir(), "no-such-sysfs-root")),
      (e: unknown) => e instanceof DriverError && e.code === "gpio_unavailable",
    );
  });
});
