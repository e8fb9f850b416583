/**
 * A replay log of the messages an agent sent and received: a bounded in-memory ring of the latest
 * entries and, optionally, a file of JSON lines `{"direction","time","message"}` appended as they
 * happen (mode 0600: payloads may be private). `readReplayFile` loads such a file back.
 *
 * Each line is written with one synchronous write, so the file is in order and complete up to the
 * last record; a crash can at worst tear the final line, which the reader skips.
 */
import { closeSync, openSync, readFileSync, writeSync } from "node:fs";
import { ConvergeError } from "../core/errors.ts";

export type Direction = "sent" | "received";

export interface ReplayEntry {
  direction: Direction;
  /** Epoch ms when recorded. */
  time: number;
  /** `message.toJSON()`. */
  message: Record<string, unknown>;
}

export interface ReplayLogOptions {
  /** Entries kept in memory; the oldest are dropped beyond it. Default 1000. */
  capacity?: number;
  /** Append every entry to this file as a JSON line. */
  file?: string;
  clock?: () => number;
}

/** A replay file that cannot be written or read back. */
export class ReplayError extends ConvergeError {}

export class ReplayLog {
  readonly capacity: number;
  readonly file: string | null;
  readonly #ring: (ReplayEntry | undefined)[];
  readonly #clock: () => number;
  #next = 0;
  #size = 0;
  #dropped = 0;
  #fd: number | null = null;

  constructor(options: ReplayLogOptions = {}) {
    this.capacity = options.capacity ?? 1000;
    if (!Number.isSafeInteger(this.capacity) || this.capacity < 1)
      throw new ReplayError(`replay capacity must be a positive integer, got ${this.capacity}`);
    this.#ring = new Array(this.capacity);
    this.#clock = options.clock ?? Date.now;
    this.file = options.file ?? null;
    if (this.file !== null) {
      try {
        this.#fd = openSync(this.file, "a", 0o600);
      } catch (err) {
        throw new ReplayError(`cannot open replay file ${this.file}: ${(err as Error).message}`, { cause: err });
      }
    }
  }

  /** Records one message (anything with `toJSON()`, such as a Message); returns the entry. */
  record(direction: Direction, message: { toJSON(): Record<string, unknown> }): ReplayEntry {
    const entry: ReplayEntry = { direction, time: this.#clock(), message: message.toJSON() };
    if (this.#size === this.capacity) this.#dropped++;
    else this.#size++;
    this.#ring[this.#next] = entry;
    this.#next = (this.#next + 1) % this.capacity;
    if (this.#fd !== null) {
      const line = Buffer.from(`${JSON.stringify(entry)}\n`);
      try {
        let off = 0;
        while (off < line.length) off += writeSync(this.#fd, line, off);
      } catch (err) {
        throw new ReplayError(`cannot append to replay file ${this.file}: ${(err as Error).message}`, { cause: err });
      }
    }
    return entry;
  }

  recordSent(message: { toJSON(): Record<string, unknown> }): ReplayEntry {
    return this.record("sent", message);
  }

  recordReceived(message: { toJSON(): Record<string, unknown> }): ReplayEntry {
    return this.record("received", message);
  }

  /** The entries in memory, oldest first. */
  entries(): ReplayEntry[] {
    const out: ReplayEntry[] = [];
    const start = (this.#next - this.#size + this.capacity) % this.capacity;
    for (let i = 0; i < this.#size; i++) out.push(this.#ring[(start + i) % this.capacity]!);
    return out;
  }

  get size(): number {
    return this.#size;
  }

  /** Entries pushed out of memory by newer ones (they remain in the file, if any). */
  get dropped(): number {
    return this.#dropped;
  }

  /** Closes the file; idempotent. Recording afterwards keeps to memory. */
  close(): void {
    if (this.#fd === null) return;
    const fd = this.#fd;
    this.#fd = null;
    closeSync(fd);
  }
}

/** Parses JSON lines written by a ReplayLog. A torn final line (no newline) is skipped. */
export function parseReplay(text: string, source = "replay"): ReplayEntry[] {
  const lines = text.split("\n");
  const torn = !text.endsWith("\n") ? lines.length - 1 : -1;
  const out: ReplayEntry[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === "") continue;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      if (i === torn) break;
      throw new ReplayError(`${source}:${i + 1}: not valid JSON`);
    }
    if (!isEntry(v)) {
      if (i === torn) break;
      throw new ReplayError(
        `${source}:${i + 1}: not a replay entry (needs direction "sent"|"received", numeric time, message object)`,
      );
    }
    out.push(v);
  }
  return out;
}

/** Loads a replay file written by a ReplayLog. */
export function readReplayFile(path: string): ReplayEntry[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ReplayError(`cannot read replay file ${path}: ${(err as Error).message}`, { cause: err });
  }
  return parseReplay(text, path);
}

function isEntry(v: unknown): v is ReplayEntry {
  if (typeof v !== "object" || v === null) return false;
  const e = v as Record<string, unknown>;
  return (
    (e.direction === "sent" || e.direction === "received") &&
    typeof e.time === "number" &&
    typeof e.message === "object" &&
    e.message !== null &&
    !Array.isArray(e.message)
  );
}
