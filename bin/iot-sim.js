#!/usr/bin/env node
require("./launch.js").run("iot-sim", "firmware-sim/cli.ts", { stoppable: true });
