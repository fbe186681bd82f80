/**
 * CPU time and memory of other processes, read from outside through /proc (Linux): a server under
 * measurement runs no code of ours. A server may be several processes (PostgreSQL's postmaster and
 * one backend per connection): the tree functions add up a process and all its descendants.
 */
import { readdirSync, readFileSync } from "node:fs";

/** /proc/PID/stat fields after the command name (which may hold spaces and parentheses). */
function statFields(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/**
 * CPU time the process has used so far (user + system, all threads), in ms, from fields 14-15.
 * They count clock ticks of USER_HZ, which is 100 on every Linux architecture the agent targets.
 */
export function readCpuMs(pid: number): number {
  const f = statFields(pid);
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
}

/** readCpuMs, or undefined when the process is gone (or not Linux). */
export function tryCpuMs(pid: number): number | undefined {
  try {
    return readCpuMs(pid);
  } catch {
    return undefined;
  }
}

/** `pid` and every live descendant. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const ppid = Number(statFields(Number(name))[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(name));
      children.set(ppid, list);
    } catch {
      // Exited while we listed /proc.
    }
  }
  const out: number[] = [];
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop()!;
    out.push(p);
    stack.push(...(children.get(p) ?? []));
  }
  return out;
}

/** CPU ms of a process tree, live processes only (a backend that exited takes its time with it). */
export function treeCpuMs(pid: number): number {
  let sum = 0;
  for (const p of processTree(pid)) sum += tryCpuMs(p) ?? 0;
  return sum;
}

/** VmRSS of a process tree in bytes (pages shared between the processes count once per process). */
export function treeRss(pid: number): number {
  let sum = 0;
  for (const p of processTree(pid)) {
    try {
      const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${p}/status`, "utf8"));
      if (m) sum += Number(m[1]) * 1024;
    } catch {
      // Exited.
    }
  }
  return sum;
}
