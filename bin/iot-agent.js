#!/usr/bin/env node
import { launch } from "./launch.js";

await launch("iot-agent", "agent/cli.ts");
