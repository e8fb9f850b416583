/**
 * A lock across the processes of one machine that share a file store directory: a file
 * `.converge/lock` created with O_EXCL (atomic: exactly one process creates it) that says who
 * owns it. A lock whose owner process is gone, or which is older than STALE_MS (a holder
 * never keeps it more than a few milliseconds), is taken over: renamed aside (one process wins the
 * rename), checked to be the very lock judged stale, and removed. The file store is synchronous,
 * so waiting is a synchronous sleep too; past `timeoutMs` the caller gets a StoreError.
 *
 * Not for network file systems shared by several machines: process liveness is checked on this
 * host only, and O_EXCL is not atomic on every one of them.
 */
import { closeSync, linkSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { join } from "node:path";
import { StoreError } from "../core/errors.ts";

const STALE_MS = 10_000;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

export class FileLock {
  readonly #path: string;
  #depth = 0;

  constructor(
    parent: string,
    private readonly timeoutMs = 5000,
  ) {
    this.#path = join(parent, "lock");
  }

  /** Runs `fn` holding the lock (re-entrant within this process). */
  with<T>(what: string, fn: () => T): T {
    if (this.#depth > 0) {
      this.#depth++;
      try {
        return fn();
      } finally {
        this.#depth--;
      }
    }
    this.#acquire(what);
    this.#depth = 1;
    try {
      return fn();
    } finally {
      this.#depth = 0;
      removeFile(this.#path);
    }
  }

  #acquire(what: string): void {
    const deadline = performance.now() + this.timeoutMs;
    for (let wait = 0.05; ; wait = Math.min(wait * 2, 2)) {
      try {
        const fd = openSync(this.#path, "wx", 0o644);
        try {
          // The nonce tells this holding apart from any other by the same process.
          writeSync(fd, `${hostname()} ${process.pid} ${randomUUID()}`);
        } finally {
          closeSync(fd);
        }
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") {
          throw new StoreError(`cannot lock the file store (${what}): ${(err as Error).message}`, { cause: err });
        }
      }
      const stale = this.#stale();
      if (stale !== null) {
        this.#takeOver(stale);
        continue;
      }
      if (performance.now() > deadline) {
        throw new StoreError(
          `the file store stayed locked by another process for more than ${this.timeoutMs} ms (${what}); ` +
            `if no converge process uses it, remove ${this.#path}`,
        );
      }
      Atomics.wait(sleeper, 0, 0, wait);
    }
  }

  /** The owner of a lock held by a dead process on this host, or for implausibly long; else null. */
  #stale(): string | null {
    try {
      const owner = readFileSync(this.#path, "utf8");
      if (Date.now() - statSync(this.#path).mtimeMs > STALE_MS) return owner;
      const [host, pid] = owner.split(" ");
      if (host !== hostname() || !pid) return null;
      try {
        process.kill(Number(pid), 0);
        return null;
      } catch (err) {
        return (err as NodeJS.ErrnoException).code === "ESRCH" ? owner : null;
      }
    } catch {
      return null; // being created or removed right now: look again
    }
  }

  /** Moves the stale lock aside and removes it; puts it back if it turns out to be a new, live one. */
  #takeOver(staleOwner: string): void {
    const aside = `${this.#path}.stale.${process.pid}.${randomUUID()}`;
    try {
      renameSync(this.#path, aside);
    } catch {
      return; // someone else moved it first
    }
    let owner = "";
    try {
      owner = readFileSync(aside, "utf8");
    } catch {
      // gone: nothing to give back
    }
    // Not the lock we judged stale: give it back, unless a new one exists already (link never replaces).
    if (owner !== staleOwner) {
      try {
        linkSync(aside, this.#path);
      } catch {
        // a new lock was taken meanwhile
      }
    }
    removeFile(aside);
  }
}

function removeFile(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}
