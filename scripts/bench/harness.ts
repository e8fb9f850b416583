/** Shared helpers for benchmarks: timing loops, a process's memory, and figures printed with unit, N and conditions. */
import { readFileSync } from "node:fs";

/** Runs `fn` n times (after a warm-up) and returns operations per second. */
export async function opsPerSec(
  n: number,
  fn: (i: number) => unknown | Promise<unknown>,
  warmup = Math.min(1000, n),
): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn(i);
  const t0 = Bun.nanoseconds();
  for (let i = 0; i < n; i++) await fn(i);
  return n / ((Bun.nanoseconds() - t0) / 1e9);
}

/** Same as opsPerSec for synchronous work, without an await per call. */
export function opsPerSecSync(n: number, fn: (i: number) => unknown, warmup = Math.min(1000, n)): number {
  for (let i = 0; i < warmup; i++) fn(i);
  const t0 = Bun.nanoseconds();
  for (let i = 0; i < n; i++) fn(i);
  return n / ((Bun.nanoseconds() - t0) / 1e9);
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (n >= 100) return Math.round(n).toLocaleString("en-US");
  return n.toPrecision(3);
}

/** A process's resident memory in MiB (VmRSS in /proc/<pid>/status, Linux only); 0 when it has none (exited). */
export function rssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : 0;
}

/** One line: `name: value unit (N=…, conditions)`. */
export function report(name: string, value: number, unit: string, conditions: string): void {
  console.log(`${name.padEnd(48)} ${fmt(value).padStart(12)} ${unit.padEnd(10)} (${conditions})`);
}
