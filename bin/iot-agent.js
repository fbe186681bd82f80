#!/usr/bin/env node
require("./launch.js").run("iot-agent", "agent/cli.ts");
