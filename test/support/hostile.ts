/** What the security end-to-end tests share: raw connections that send what they like, and reading /metrics and RSS. */
import type { Socket } from "bun";
import { readFileSync } from "node:fs";

export interface RawConnection {
  socket: Socket<undefined>;
  /** Resolves when the other side closed the connection (or it failed). */
  closed: Promise<void>;
  isClosed(): boolean;
  /** Writes everything, waiting for drain as needed. */
  writeAll(bytes: Uint8Array): Promise<void>;
}

/** A plain TCP connection to 127.0.0.1:`port`. */
export async function connectRaw(port: number): Promise<RawConnection> {
  let closed = false;
  let onClose!: () => void;
  let onDrain: (() => void) | undefined;
  const done = new Promise<void>((r) => (onClose = r));
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data() {},
      drain: () => onDrain?.(),
      close: () => {
        closed = true;
        onClose();
      },
      error() {},
    },
  });
  return {
    socket,
    closed: done,
    isClosed: () => closed,
    async writeAll(bytes) {
      let at = 0;
      while (at < bytes.length && !closed) {
        const n = socket.write(bytes.subarray(at));
        if (n < 0) return;
        at += n;
        if (at < bytes.length) await Promise.race([new Promise<void>((r) => (onDrain = r)), done]);
      }
    },
  };
}

/** The value of one series of a Prometheus text exposition (0 when absent). */
export async function metric(baseUrl: string, series: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  for (const line of text.split("\n")) if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  return 0;
}

/** Resident and peak resident memory of a process, in MiB (from /proc). */
export function memoryMiB(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  return { rss: Math.round(kib("VmRSS") / 1024), peak: Math.round(kib("VmHWM") / 1024) };
}
