/** Helpers for transport tests: a listener stopped after each test, length prefixes, waiting for arrivals with a deadline, capturing logs, reading a child's stdout. */
import { afterEach, expect } from "bun:test";
import { configureLogging, logLevel, type Level } from "../../src/observability/log.ts";
import type { Message } from "../../src/core/message.ts";
import type { Transport } from "../../src/transport/transport.ts";
import { readLines } from "./lines.ts";

/**
 * Registers an afterEach that stops the server the test started, and returns `listening()`, which
 * makes one with `make`, starts it and hands it back.
 */
export function listeningServer<T extends Transport>(make: () => T): () => Promise<T> {
  let server: T | undefined;
  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });
  return async () => {
    server = make();
    await server.start();
    return server;
  };
}

/** A frame's 4-byte big-endian length prefix saying `n`. */
export function lengthPrefix(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

/** Resolves with the first `n` messages that arrive (via onMessage), or rejects after `timeoutMs`. */
export function collect(t: Transport, n: number, timeoutMs = 10_000): Promise<Message[]> {
  const got: Message[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      detach();
      reject(new Error(`only ${got.length} of ${n} messages arrived within ${timeoutMs} ms`));
    }, timeoutMs);
    const detach = t.onMessage((m) => {
      got.push(m);
      if (got.length === n) {
        clearTimeout(timer);
        detach();
        resolve(got);
      }
    });
  });
}

/** Captures log lines (at `level` and above) until `restore()` is called. */
export function captureLogs(level: Level = "debug"): { lines: string[]; restore: () => void } {
  const lines: string[] = [];
  const previous = logLevel();
  configureLogging({ level, sink: { write: (line) => void lines.push(line) } });
  return {
    lines,
    restore: () => configureLogging({ level: previous, sink: { write: (line) => process.stderr.write(line) } }),
  };
}

/** Polls `check` every few ms until it is true or `timeoutMs` passes (for outcomes that have no event). */
export async function eventually(check: () => boolean, timeoutMs = 5000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * For a burst of `n` messages numbered by `payload.i` whose first connection was reset: waits for
 * message n - 1 to arrive in `survivors` (what the new connection carried), then checks that they
 * are the tail of the burst, in order.
 */
export async function expectBurstTail(survivors: Message[], n: number): Promise<void> {
  await eventually(() => survivors.at(-1)?.payload.i === n - 1, 10_000, "the last message on the new connection");
  const first = survivors[0]!.payload.i as number;
  expect(survivors.map((m) => m.payload.i)).toEqual(Array.from({ length: n - first }, (_, k) => first + k));
}

/** Reads a child process's stdout line by line; the process closing its output is an error. */
export function lineReader(stream: ReadableStream<Uint8Array>): () => Promise<string> {
  const lines = readLines(stream);
  return async () => {
    const line = await lines.next();
    if (line === undefined) throw new Error("the process closed its output");
    return line;
  };
}
