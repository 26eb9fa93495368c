/**
 * `cpu_affinity`: which CPUs a node may run on. The machine's CPUs are read once (the
 * descriptor checks every id against them); a node is pinned by starting it through
 * `taskset -c`, which calls sched_setaffinity before it executes the program, so the
 * program and every thread it starts inherit the mask (Node.js has no pre-exec hook).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import type { Command } from './spawner';

/** Parses a kernel CPU list such as `0-3,8,10-11`. */
export function parseCpuList(text: string): number[] {
  const cpus: number[] = [];
  for (const part of text.trim().split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) continue;
    const [first, last] = [Number(m[1]), Number(m[2] ?? m[1])];
    for (let cpu = first; cpu <= last; cpu++) cpus.push(cpu);
  }
  return cpus;
}

/** `0-3,8` for [0, 1, 2, 3, 8]. */
export function formatCpuList(cpus: readonly number[]): string {
  const sorted = [...new Set(cpus)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    parts.push(j > i ? `${sorted[i]}-${sorted[j]}` : String(sorted[i]));
    i = j + 1;
  }
  return parts.join(',');
}

let online: number[] | undefined;

/** The machine's online CPUs (`/sys/devices/system/cpu/online`; else 0 … count-1). */
export function onlineCpus(): readonly number[] {
  if (online) return online;
  try {
    online = parseCpuList(fs.readFileSync('/sys/devices/system/cpu/online', 'utf8'));
  } catch {
    online = [];
  }
  if (online.length === 0) online = os.cpus().map((_, i) => i);
  return online;
}

/** The first id of `cpus` that is not a CPU of this machine, as an issue at its index. */
export function checkAffinity(cpus: readonly number[]): { index: number; message: string; hint: string } | undefined {
  const machine = onlineCpus();
  const index = cpus.findIndex((cpu) => !machine.includes(cpu));
  if (index < 0) return undefined;
  return {
    index,
    message: `\`cpu_affinity\`: CPU ${cpus[index]} is not a CPU of this machine`,
    hint: `its online CPUs are ${formatCpuList(machine)}`,
  };
}

let tasksetPath: string | null | undefined;

/** Where `taskset` is, or null. */
function taskset(): string | null {
  if (tasksetPath !== undefined) return tasksetPath;
  try {
    tasksetPath = execFileSync('sh', ['-c', 'command -v taskset'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || null;
  } catch {
    tasksetPath = null;
  }
  return tasksetPath;
}

/**
 * The command that starts `command` pinned to `cpus`, or an error saying why it cannot
 * be: without `taskset` (util-linux) a node with `cpu_affinity` is not started unpinned.
 */
export function pinned(command: Command, cpus: readonly number[]): Command | Error {
  const tool = taskset();
  if (!tool) return new Error('cpu_affinity needs the `taskset` command (package util-linux), which is not on PATH');
  return { program: tool, args: ['--cpu-list', formatCpuList(cpus), command.program, ...command.args] };
}
