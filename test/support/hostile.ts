/** What the security end-to-end tests share: raw connections that send what they like, and reading /metrics and RSS. */
import type { Socket } from "bun";
import { readFileSync } from "node:fs";
import { Message } from "../../src/core/message.ts";
import { frameBody } from "../../src/transport/framing.ts";

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

/**
 * A framed real message whose payload is a map32 of `keys` entries "k0000000" → 0 (about 11
 * bytes each), spliced in where the message had `{a: 0}`: the decode-budget attack.
 */
export function wideFrame(keys: number): Uint8Array {
  const payload = Buffer.alloc(5 + keys * 11);
  payload.writeUInt8(0xdf, 0);
  payload.writeUInt32BE(keys, 1);
  for (let i = 0, at = 5; i < keys; i++, at += 11) {
    payload.writeUInt8(0xa9, at);
    payload.write(`k${String(i).padStart(8, "0")}`, at + 1, "latin1");
    payload.writeUInt8(0x00, at + 10);
  }
  const wire = Buffer.from(new Message({ payload: { a: 0 } }).encode());
  const p = wire.indexOf(Buffer.from("81a16100", "hex"));
  return frameBody(new Uint8Array(Buffer.concat([wire.subarray(0, p), payload, wire.subarray(p + 4)])));
}
