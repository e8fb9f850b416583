/**
 * A directory with one JSON file per key (see file-names.ts for the naming). Writes go to a temp
 * file that is fsynced and then renamed into place, so a crash leaves the old record or the new
 * one, never a torn one. All file access is synchronous: an update's read, callback and write
 * happen without yielding, which makes it atomic within this process. Across processes only
 * putIfAbsent is atomic (it links the temp file into place, which fails if the name exists);
 * concurrent updates from several processes need sqlite or redis.
 *
 * Internals live under `.converge/` (a name no record file can have, since records end in .json):
 * an index set is a JSON array in `index/`, a channel is a token file in `notify/` that subscribers
 * poll while they exist.
 */
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
import { randomUUID } from "node:crypto";
import { StoreError } from "../core/errors.ts";
import { logger } from "../observability/log.ts";
import { encode, fileNameOf, headMayMatch, parseFileName } from "./file-names.ts";
import { parseRecord, serialise } from "./json.ts";
import { checkIndexUpdate, checkKey, sortKeys } from "./keys.ts";
import { Listeners } from "./listeners.ts";
import { DECLINE, type Decline, type Store, type UpdateOptions } from "./store.ts";

const log = logger("store.file");

export interface FileStoreOptions {
  /** fsync each record before renaming it into place (default true); off trades crash safety for speed. */
  fsync?: boolean;
  /** How often subscribers look for notifications from other processes (default 20 ms). */
  pollMs?: number;
}

let tmpSeq = 0;

export class FileStore implements Store {
  readonly description: string;
  readonly dir: string;
  readonly #indexDir: string;
  readonly #notifyDir: string;
  readonly #fsync: boolean;
  readonly #pollMs: number;
  readonly #listeners = new Listeners();
  /** Last notification token seen per subscribed channel. */
  readonly #seen = new Map<string, string>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  constructor(dir: string, options: FileStoreOptions = {}) {
    this.dir = resolve(dir);
    this.description = `file ${this.dir}`;
    this.#indexDir = join(this.dir, ".converge", "index");
    this.#notifyDir = join(this.dir, ".converge", "notify");
    this.#fsync = options.fsync ?? true;
    this.#pollMs = options.pollMs ?? 20;
    try {
      mkdirSync(this.#indexDir, { recursive: true });
      mkdirSync(this.#notifyDir, { recursive: true });
      readdirSync(this.dir);
    } catch (err) {
      throw new StoreError(`cannot use "${this.dir}" as a file store: ${(err as Error).message}`, { cause: err });
    }
  }

  #check(name?: string, what?: string): void {
    if (this.#closed) throw new StoreError(`the file store at ${this.dir} is closed`);
    if (name !== undefined) checkKey(name, what);
  }

  async get<T>(key: string): Promise<T | undefined> {
    this.#check(key);
    return this.#get(key) as T | undefined;
  }

  async getMany<T>(keys: readonly string[]): Promise<(T | undefined)[]> {
    this.#check();
    for (const key of keys) checkKey(key);
    return keys.map((key) => this.#get(key) as T | undefined);
  }

  #get(key: string): unknown {
    const { name, hashed } = fileNameOf(key);
    const text = this.#read(join(this.dir, name), `"${key}"`);
    if (text === undefined) return undefined;
    if (!hashed) return parseRecord(key, text);
    const env = parseRecord(key, text) as { key?: unknown; value?: unknown } | null;
    if (env === null || typeof env !== "object" || env.key !== key || !("value" in env)) {
      throw new StoreError(
        `the record "${key}" is corrupt (its file ${name} does not hold this key); repair or delete it`,
      );
    }
    return env.value;
  }

  async put(key: string, value: unknown): Promise<void> {
    this.#check(key);
    this.#write(key, serialise(key, value), false);
  }

  async delete(key: string): Promise<boolean> {
    this.#check(key);
    return this.#unlink(join(this.dir, fileNameOf(key).name), `"${key}"`);
  }

  async list(prefix: string): Promise<string[]> {
    this.#check(prefix, "prefix");
    const encPrefix = encode(prefix);
    const out: string[] = [];
    for (const name of this.#readdir()) {
      const parsed = parseFileName(name);
      if (!parsed) continue; // temp files, .converge/
      if (!parsed.hashed) {
        if (parsed.key.startsWith(prefix)) out.push(parsed.key);
      } else if (headMayMatch(parsed.head, encPrefix)) {
        const key = this.#keyOfHashed(name);
        if (key?.startsWith(prefix)) out.push(key);
      }
    }
    return sortKeys(out);
  }

  #keyOfHashed(name: string): string | undefined {
    const text = this.#read(join(this.dir, name), `file ${name}`);
    if (text === undefined) return undefined; // deleted since readdir
    const env = parseRecord(`(long key in file ${name})`, text) as { key?: unknown } | null;
    if (env === null || typeof env !== "object" || typeof env.key !== "string") {
      throw new StoreError(`the record in file ${join(this.dir, name)} is corrupt (no key); repair or delete it`);
    }
    return env.key;
  }

  async putIfAbsent(key: string, value: unknown): Promise<boolean> {
    this.#check(key);
    return this.#write(key, serialise(key, value), true);
  }

  /** The hint (`options.expected`) is ignored. An index change happens in the same synchronous step. */
  async update<T>(
    key: string,
    fn: (current: T | undefined) => T | Decline,
    options?: UpdateOptions<T>,
  ): Promise<T | undefined> {
    this.#check(key);
    const index = options?.index;
    if (index) checkIndexUpdate(index);
    // No await between read and write: nothing else in this process can interleave.
    const current = this.#get(key) as T | undefined;
    const next = fn(current);
    if (next === DECLINE) return current;
    const text = serialise(key, next);
    const stored = JSON.parse(text) as T;
    if (!index) {
      this.#write(key, text, false);
      return stored;
    }
    // Should a crash fall between the two files, the index errs towards listing a member (a reader
    // skips or drops an extra member; a missing one would hide a record).
    if (index.keep(stored)) {
      this.#indexChange(index.name, index.member, true);
      this.#write(key, text, false);
    } else {
      this.#write(key, text, false);
      this.#indexChange(index.name, index.member, false);
    }
    return stored;
  }

  async indexAdd(index: string, ...members: string[]): Promise<void> {
    this.#check(index, "index name");
    for (const m of members) checkKey(m, "index member");
    this.#indexChange(index, members, true);
  }

  async indexRemove(index: string, ...members: string[]): Promise<void> {
    this.#check(index, "index name");
    this.#indexChange(index, members, false);
  }

  #indexChange(index: string, members: string | string[], add: boolean): void {
    const set = new Set(this.#readIndex(index));
    const size = set.size;
    for (const m of typeof members === "string" ? [members] : members) add ? set.add(m) : set.delete(m);
    if (set.size !== size) this.#writeIndex(index, [...set]);
  }

  async indexMembers(index: string): Promise<string[]> {
    this.#check(index, "index name");
    return this.#readIndex(index);
  }

  #readIndex(index: string): string[] {
    const text = this.#read(join(this.#indexDir, fileNameOf(index).name), `index "${index}"`);
    if (text === undefined) return [];
    const members = parseRecord(`index ${index}`, text);
    if (!Array.isArray(members) || !members.every((m) => typeof m === "string")) {
      throw new StoreError(
        `the index "${index}" in ${this.#indexDir} is corrupt (not a list of strings); repair or delete it`,
      );
    }
    return members;
  }

  #writeIndex(index: string, members: string[]): void {
    const path = join(this.#indexDir, fileNameOf(index).name);
    if (members.length === 0) this.#unlink(path, `index "${index}"`);
    else this.#atomicWrite(path, JSON.stringify(members), false, `index "${index}"`);
  }

  async notify(channel: string): Promise<void> {
    this.#check(channel, "channel");
    const token = randomUUID();
    this.#atomicWrite(join(this.#notifyDir, fileNameOf(channel).name), token, false, `channel "${channel}"`);
    if (this.#seen.has(channel)) this.#seen.set(channel, token); // our own listeners are woken directly below
    this.#listeners.fire(channel);
  }

  subscribe(channel: string, listener: () => void): () => void {
    this.#check(channel, "channel");
    if (!this.#listeners.has(channel)) this.#seen.set(channel, this.#token(channel));
    const off = this.#listeners.add(channel, listener, (c) => {
      this.#seen.delete(c);
      if (this.#listeners.size === 0) this.#stopPolling();
    });
    this.#timer ??= setInterval(() => this.#poll(), this.#pollMs);
    return off;
  }

  #token(channel: string): string {
    return this.#read(join(this.#notifyDir, fileNameOf(channel).name), `channel "${channel}"`) ?? "";
  }

  #poll(): void {
    for (const channel of this.#listeners.channels()) {
      try {
        const token = this.#token(channel);
        if (token === this.#seen.get(channel)) continue;
        this.#seen.set(channel, token);
        this.#listeners.fire(channel);
      } catch (err) {
        log.error("cannot read a notification file", { dir: this.dir, channel, error: err });
      }
    }
  }

  #stopPolling(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async now(): Promise<number> {
    this.#check();
    return Date.now();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#stopPolling();
    this.#listeners.clear();
    this.#seen.clear();
  }

  /** Writes a record; with `exclusive`, only if it does not exist (returns false then). */
  #write(key: string, text: string, exclusive: boolean): boolean {
    const { name, hashed } = fileNameOf(key);
    const body = hashed ? `{"key":${JSON.stringify(key)},"value":${text}}` : text;
    return this.#atomicWrite(join(this.dir, name), body, exclusive, `"${key}"`);
  }

  #atomicWrite(path: string, body: string, exclusive: boolean, what: string): boolean {
    const tmp = `${path}.${process.pid}.${++tmpSeq}.tmp`;
    try {
      const fd = openSync(tmp, "wx", 0o644);
      try {
        writeFileSync(fd, body);
        if (this.#fsync) fsyncSync(fd);
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
        /* already renamed or never created */
      }
      throw this.#error(`write ${what}`, err);
    }
  }

  /** link() fails if the target exists, which makes putIfAbsent atomic across processes too. */
  #linkExclusive(tmp: string, path: string): boolean {
    try {
      linkSync(tmp, path);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
      // A file system without hard links: fall back to check-then-rename (atomic within this process).
      if (this.#read(path, path) !== undefined) return false;
      renameSync(tmp, path);
      return true;
    } finally {
      try {
        unlinkSync(tmp);
      } catch {
        /* renamed by the fallback */
      }
    }
  }

  #read(path: string, what: string): string | undefined {
    try {
      return readFileSync(path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw this.#error(`read ${what}`, err);
    }
  }

  #unlink(path: string, what: string): boolean {
    try {
      unlinkSync(path);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw this.#error(`delete ${what}`, err);
    }
  }

  #readdir(): string[] {
    try {
      return readdirSync(this.dir);
    } catch (err) {
      throw this.#error("list the directory", err);
    }
  }

  #error(action: string, err: unknown): StoreError {
    if (err instanceof StoreError) return err;
    return new StoreError(`file store ${this.dir}: cannot ${action}: ${(err as Error).message}`, { cause: err });
  }
}
