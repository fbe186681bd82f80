/**
 * Preloaded into every test process (scripts/test: --import). When a process reaches its 'exit'
 * event, every test has reported and no handle or request is left (that is what 'exit' means), so
 * it leaves at once through process.exit instead of Node's environment cleanup.
 *
 * Why: about one run in ten of test/interop/servers.test.ts passed every test, had nothing left
 * (process._getActiveHandles and _getActiveRequests both empty at 'exit') and then spun at 100%
 * CPU inside Node 20's exit cleanup (gdb: FreeEnvironment -> CleanupHandles -> uv_run) until the
 * phase cap ended the whole run. --test-force-exit avoids the spin but, on Node 20, exits the
 * runner before its TAP summary is written, which scripts/test counts.
 */
// Added at beforeExit so it runs after every other 'exit' listener (the harness's teardown in
// cleanup.ts kills peers and removes temp dirs there): process.exit skips the listeners after it.
process.once("beforeExit", () => {
  process.on("exit", (code) => {
    process.exit(code);
  });
});
