#!/usr/bin/env node
require("./launch.js").run("iot-fleet", "provisioning/cli.ts");
