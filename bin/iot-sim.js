#!/usr/bin/env node
// `iot-sim fleet ...` runs N whole agents (fleet-sim/, its own bundle); every other command is the board simulator.
const fleet = process.argv[2] === "fleet";
require("./launch.js").run(fleet ? "iot-fleet-sim" : "iot-sim", fleet ? "fleet-sim/cli.ts" : "firmware-sim/cli.ts", {
  stoppable: true,
});
