/** `converge/sqlite`: the SQLite store (bun:sqlite), one file shared by every process on one machine. */
export { SqliteStore, type SqliteStoreOptions } from "./store/sqlite.ts";
