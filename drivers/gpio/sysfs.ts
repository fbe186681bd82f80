/**
 * Resolves a chip-relative GPIO line to its global sysfs number by reading
 * `<root>/gpiochipN/{base,label,ngpio}`. Since Linux 6.6 (Raspberry Pi OS bookworm updates) the
 * gpiochip bases are no longer 0: on a Pi 4 the header chip has base 512, so "BCM 17" is sysfs
 * 529, and on a Pi 5 the header is the RP1 chip with yet another base. Assuming any base is wrong
 * on some kernel, so we always read it. The root is injectable so tests use a fake tree.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { DriverError } from "../types.js";

export const SYSFS_GPIO_ROOT = "/sys/class/gpio";

/** Labels of the chip that carries the 40-pin header, most specific first (Pi 5 RP1, Pi 4, Pi 3 and older). */
export const HEADER_CHIP_LABELS = ["pinctrl-rp1", "pinctrl-bcm2711", "pinctrl-bcm2835"] as const;

export interface SysfsChip {
  /** Directory name, e.g. "gpiochip512" (named after the base, not the /dev/gpiochipN index). */
  name: string;
  label: string;
  base: number;
  ngpio: number;
}

export async function listSysfsChips(root = SYSFS_GPIO_ROOT): Promise<SysfsChip[]> {
  let entries: string[];
  try {
    entries = await readdir(root);
  } catch (err) {
    throw new DriverError(
      "gpio_unavailable",
      `no sysfs GPIO at ${root}: ${(err as Error).message}`,
      { device: "gpio", root },
      { cause: err },
    );
  }
  const chips: SysfsChip[] = [];
  for (const name of entries.filter((e) => /^gpiochip\d+$/.test(e)).sort()) {
    const dir = join(root, name);
    const readText = async (f: string) => (await readFile(join(dir, f), "utf8")).trim();
    try {
      const base = Number.parseInt(await readText("base"), 10);
      const ngpio = Number.parseInt(await readText("ngpio"), 10);
      const label = await readText("label");
      if (!Number.isInteger(base) || !Number.isInteger(ngpio)) throw new Error("base/ngpio is not a number");
      chips.push({ name, label, base, ngpio });
    } catch (err) {
      throw new DriverError(
        "gpio_unavailable",
        `cannot read ${dir}: ${(err as Error).message}`,
        { device: "gpio", chip: name },
        { cause: err },
      );
    }
  }
  return chips.sort((a, b) => a.base - b.base);
}

/**
 * Picks the chip: by label (or directory name) when given; otherwise the Raspberry Pi header chip
 * by its known labels; otherwise the only chip. Anything else is ambiguous and asks for
 * `board.gpio.chip`, listing what exists so the admin can pick.
 */
export function selectChip(chips: SysfsChip[], wanted?: string): SysfsChip {
  const names = chips.map((c) => `${c.label} (${c.name}, base ${c.base}, ${c.ngpio} lines)`).join("; ") || "none";
  if (wanted !== undefined) {
    const hit = chips.find((c) => c.label === wanted || c.name === wanted);
    if (!hit)
      throw new DriverError("gpio_no_chip", `no GPIO chip labelled ${JSON.stringify(wanted)}; found: ${names}`, {
        device: "gpio",
        chip: wanted,
      });
    return hit;
  }
  for (const label of HEADER_CHIP_LABELS) {
    const hit = chips.find((c) => c.label === label);
    if (hit) return hit;
  }
  if (chips.length === 1) return chips[0]!;
  throw new DriverError(
    "gpio_no_chip",
    chips.length === 0
      ? "no GPIO chips found"
      : `several GPIO chips and none is a known header chip; set board.gpio.chip to one of: ${names}`,
    { device: "gpio" },
  );
}

export interface ResolvedLine {
  chip: SysfsChip;
  line: number;
  /** The global number sysfs (and onoff) expect: chip.base + line. */
  sysfsNumber: number;
}

export function resolveLine(chips: SysfsChip[], line: number, wanted?: string): ResolvedLine {
  const chip = selectChip(chips, wanted);
  if (!Number.isInteger(line) || line < 0 || line >= chip.ngpio)
    throw new DriverError("gpio_line_out_of_range", `line ${line} is outside ${chip.label} (0..${chip.ngpio - 1})`, {
      device: `gpio:${chip.label}`,
      channel: String(line),
    });
  return { chip, line, sysfsNumber: chip.base + line };
}
