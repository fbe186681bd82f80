#!/usr/bin/env node
import { launch } from "./launch.js";

await launch("iot-sim", "firmware-sim/cli.ts", { stoppable: true });
