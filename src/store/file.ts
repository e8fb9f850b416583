/**
 * A directory with one JSON file per key (see file-names.ts for the naming). Writes go to a temp
 * file that is fsynced and then renamed into place, so a crash leaves the old record or the new
 * one, never a torn one. Every write (put, delete, update, index changes) holds the directory's
 * lock (file-lock.ts), so updates are atomic across the processes of one machine, and tasks go
 * through the generic task queue (generic-queue.ts) exactly as on the other backends. Reads take no
 * lock: a rename is atomic.
 *
 * Internals live under `.converge/` (a name no record file can have, since records end in .json):
 * an index set is a JSON array in `index/`, a channel is a token file in `notify/` that watchers
 * poll, and `lock/` is the lock.
 */
import { randomUUID } from "node:crypto";
import {
  closeSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join, resolve } from "node:path";
import { StoreError } from "../core/errors.ts";
import { quoted } from "../core/text.ts";
import { logger } from "../observability/log.ts";
import type { Driver } from "./driver.ts";
import { FileLock } from "./file-lock.ts";
import { encode, fileNameOf, headMayMatch, parseFileName } from "./file-names.ts";
import { StoreFront } from "./front.ts";
import { parseRecord } from "./json.ts";
import { PolledChannels } from "./polled-channels.ts";

const log = logger("store.file");

export interface FileStoreOptions {
  /** fsync each record before renaming it into place (default true); off trades crash safety for speed. */
  fsync?: boolean;
  /** How often watchers look for notifications from other processes (default 20 ms). */
  pollMs?: number;
  /** How long a write waits for another process holding the lock (default 5000 ms). */
  lockTimeoutMs?: number;
}

let tmpSeq = 0;

/** The files of one store directory: reads, atomic writes, and errors that name the directory. */
class Files {
  readonly indexDir: string;
  readonly notifyDir: string;
  readonly lock: FileLock;

  constructor(
    readonly dir: string,
    private readonly fsync: boolean,
    lockTimeoutMs: number,
  ) {
    const internal = join(dir, ".converge");
    this.indexDir = join(internal, "index");
    this.notifyDir = join(internal, "notify");
    try {
      mkdirSync(this.indexDir, { recursive: true });
      mkdirSync(this.notifyDir, { recursive: true });
      readdirSync(dir);
    } catch (err) {
      throw new StoreError(`cannot use "${dir}" as a file store: ${(err as Error).message}`, { cause: err });
    }
    this.lock = new FileLock(internal, lockTimeoutMs);
  }

  error(action: string, err: unknown): StoreError {
    if (err instanceof StoreError) return err;
    return new StoreError(`file store ${this.dir}: cannot ${action}: ${(err as Error).message}`, { cause: err });
  }

  read(path: string, what: string): string | undefined {
    try {
      return readFileSync(path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw this.error(`read ${what}`, err);
    }
  }

  unlink(path: string, what: string): boolean {
    try {
      unlinkSync(path);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw this.error(`delete ${what}`, err);
    }
  }

  readdir(): string[] {
    try {
      return readdirSync(this.dir);
    } catch (err) {
      throw this.error("list the directory", err);
    }
  }

  /** Writes `body` to `path` atomically; with `exclusive`, only if it does not exist (false then). */
  write(path: string, body: string, exclusive: boolean, what: string): boolean {
    const tmp = `${path}.${process.pid}.${++tmpSeq}.tmp`;
    try {
      const fd = openSync(tmp, "wx", 0o644);
      try {
        writeFileSync(fd, body);
        if (this.fsync) fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      if (!exclusive) {
        renameSync(tmp, path);
        return true;
      }
      return this.#linkExclusive(tmp, path);
    } catch (err) {
      try {
        unlinkSync(tmp);
      } catch {
        // already renamed or never created
      }
      throw this.error(`write ${what}`, err);
    }
  }

  /** link() fails if the target exists: putIfAbsent stays atomic even against a writer without the lock. */
  #linkExclusive(tmp: string, path: string): boolean {
    try {
      linkSync(tmp, path);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
      // A file system without hard links: check then rename, which the lock makes atomic.
      if (this.read(path, path) !== undefined) return false;
      renameSync(tmp, path);
      return true;
    } finally {
      try {
        unlinkSync(tmp);
      } catch {
        // renamed by the fallback
      }
    }
  }

  /** The stored text of a record (the value's JSON), or undefined. */
  getRecord(key: string): string | undefined {
    const { name, hashed } = fileNameOf(key);
    const text = this.read(join(this.dir, name), quoted(key));
    if (text === undefined || !hashed) return text;
    const env = parseRecord(key, text) as { key?: unknown; value?: unknown } | null;
    if (env === null || typeof env !== "object" || env.key !== key || !("value" in env)) {
      throw new StoreError(
        `the record ${quoted(key)} is corrupt (its file ${name} does not hold this key); repair or delete it`,
      );
    }
    return JSON.stringify(env.value);
  }

  setRecord(key: string, text: string, exclusive: boolean): boolean {
    const { name, hashed } = fileNameOf(key);
    const body = hashed ? `{"key":${JSON.stringify(key)},"value":${text}}` : text;
    return this.write(join(this.dir, name), body, exclusive, quoted(key));
  }

  keyOfHashed(name: string): string | undefined {
    const text = this.read(join(this.dir, name), `file ${name}`);
    if (text === undefined) return undefined; // deleted since readdir
    const env = parseRecord(`(long key in file ${name})`, text) as { key?: unknown } | null;
    if (env === null || typeof env !== "object" || typeof env.key !== "string") {
      throw new StoreError(`the record in file ${join(this.dir, name)} is corrupt (no key); repair or delete it`);
    }
    return env.key;
  }

  readIndex(name: string): string[] {
    const text = this.read(join(this.indexDir, fileNameOf(name).name), `index ${quoted(name)}`);
    if (text === undefined) return [];
    const members = parseRecord(`index ${name}`, text);
    if (!Array.isArray(members) || !members.every((m) => typeof m === "string")) {
      throw new StoreError(
        `the index ${quoted(name)} in ${this.indexDir} is corrupt (not a list of strings); repair or delete it`,
      );
    }
    return members;
  }

  changeIndex(name: string, members: readonly string[], add: boolean): void {
    const set = new Set(this.readIndex(name));
    const size = set.size;
    for (const m of members) add ? set.add(m) : set.delete(m);
    if (set.size === size) return; // nothing changed
    const path = join(this.indexDir, fileNameOf(name).name);
    if (set.size === 0) this.unlink(path, `index ${quoted(name)}`);
    else this.write(path, JSON.stringify([...set]), false, `index ${quoted(name)}`);
  }

  token(channel: string): string {
    return this.read(join(this.notifyDir, fileNameOf(channel).name), `channel ${quoted(channel)}`) ?? "";
  }
}

function fileDriver(dir: string, options: FileStoreOptions = {}): Driver<string> & { dir: string } {
  const files = new Files(resolve(dir), options.fsync ?? true, options.lockTimeoutMs ?? 5000);
  const pollMs = options.pollMs ?? 20;
  const locked = <T>(what: string, fn: () => T) => files.lock.with(what, fn);
  const channels: PolledChannels<string> = new PolledChannels(pollMs, () =>
    channels.check(
      (channel) => files.token(channel),
      (channel, err) => log.error("cannot read a notification file", { dir: files.dir, channel, err }),
    ),
  );

  return {
    codec: "json",
    description: `file ${files.dir}`,
    dir: files.dir,
    get: (key) => files.getRecord(key),
    set: (key, text) => void locked(`write ${quoted(key)}`, () => files.setRecord(key, text, false)),
    setIfAbsent: (key, text) => locked(`write ${quoted(key)}`, () => files.setRecord(key, text, true)),
    delete: (key) =>
      locked(`delete ${quoted(key)}`, () => files.unlink(join(files.dir, fileNameOf(key).name), quoted(key))),
    list(prefix) {
      const encPrefix = encode(prefix);
      const out: string[] = [];
      for (const name of files.readdir()) {
        const parsed = parseFileName(name);
        if (!parsed) continue; // temp files, .converge/
        if (!parsed.hashed) {
          if (parsed.key.startsWith(prefix)) out.push(parsed.key);
        } else if (headMayMatch(parsed.head, encPrefix)) {
          const key = files.keyOfHashed(name);
          if (key?.startsWith(prefix)) out.push(key);
        }
      }
      return out;
    },
    update(key, step) {
      locked(`update ${quoted(key)}`, () => {
        const write = step(files.getRecord(key));
        if (!write) return;
        // Should a crash fall between the two files, the index errs towards listing a member (a
        // reader skips an extra member; a missing one would hide a record).
        if (write.index?.add) files.changeIndex(write.index.name, [write.index.member], true);
        files.setRecord(key, write.value, false);
        if (write.index && !write.index.add) files.changeIndex(write.index.name, [write.index.member], false);
      });
    },
    indexAdd: (name, members) => locked(`add to index ${quoted(name)}`, () => files.changeIndex(name, members, true)),
    indexRemove: (name, members) =>
      locked(`remove from index ${quoted(name)}`, () => files.changeIndex(name, members, false)),
    indexMembers: (name) => files.readIndex(name),
    publish(channel) {
      const token = randomUUID();
      files.write(join(files.notifyDir, fileNameOf(channel).name), token, false, `channel ${quoted(channel)}`);
      channels.mark(channel, token); // the front wakes this process's listeners itself
    },
    watch: (channel, heard) => channels.watch(channel, files.token(channel), heard),
    unwatch: (channel) => channels.unwatch(channel),
    now: () => Date.now(),
    close: () => channels.close(),
  };
}

export class FileStore extends StoreFront {
  readonly dir: string;

  constructor(dir: string, options: FileStoreOptions = {}) {
    const driver = fileDriver(dir, options);
    super(driver);
    this.dir = driver.dir;
  }
}
