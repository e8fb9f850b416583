/**
 * Keys as file names that can never leave the store directory or collide with each other.
 *
 * Every UTF-8 byte outside [a-z0-9._-] becomes `%XX` (uppercase hex). Uppercase letters are escaped
 * too, so that `A` and `a` stay distinct on case-insensitive file systems (macOS, Windows). No
 * name contains `/`, NUL or is `.`/`..` once `.json` is appended, and decoding is exact.
 *
 * A name longer than the file system allows is shortened to a readable head plus `~` and a hash of
 * the key; `~` never occurs in a plain encoding, so a hashed name never equals a plain one. Such a
 * file holds an envelope `{ key, value }` so that listing can return the original key.
 */
import { createHash } from "node:crypto";

export const SUFFIX = ".json";
/** Most file systems allow 255 bytes per name; stay well below to leave room for temp suffixes. */
const MAX_PLAIN = 200;
const HEAD = 120;

const SAFE = new Uint8Array(256);
for (const c of "abcdefghijklmnopqrstuvwxyz0123456789._-") SAFE[c.charCodeAt(0)] = 1;
const HEX = "0123456789ABCDEF";

export function encode(text: string): string {
  const bytes = Buffer.from(text, "utf8");
  let out = "";
  for (const b of bytes) out += SAFE[b] ? String.fromCharCode(b) : `%${HEX[b >> 4]}${HEX[b & 15]}`;
  return out;
}

export function decode(encoded: string): string {
  return Buffer.from(
    encoded.replace(/%([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))),
    "latin1",
  ).toString("utf8");
}

export interface FileName {
  /** The file name, suffix included. */
  name: string;
  /** True when the name is hashed and the file holds a `{ key, value }` envelope. */
  hashed: boolean;
}

export function fileNameOf(key: string): FileName {
  const enc = encode(key);
  if (enc.length <= MAX_PLAIN) return { name: enc + SUFFIX, hashed: false };
  return {
    name: `${headOf(enc)}~${createHash("sha256").update(key, "utf8").digest("hex").slice(0, 40)}${SUFFIX}`,
    hashed: true,
  };
}

/** The first HEAD characters of an encoding, never cutting an escape in half. */
function headOf(enc: string): string {
  let head = enc.slice(0, HEAD);
  const pct = head.lastIndexOf("%");
  if (pct >= 0 && pct > head.length - 3) head = head.slice(0, pct);
  return head;
}

export type Parsed = { key: string; hashed: false } | { head: string; hashed: true };

/** What a directory entry says about its key; undefined for files that are not records. */
export function parseFileName(name: string): Parsed | undefined {
  if (!name.endsWith(SUFFIX)) return undefined;
  const stem = name.slice(0, -SUFFIX.length);
  const tilde = stem.indexOf("~");
  if (tilde >= 0) return { head: stem.slice(0, tilde), hashed: true };
  if (!/^(?:[a-z0-9._-]|%[0-9A-F]{2})*$/.test(stem)) return undefined;
  return { key: decode(stem), hashed: false };
}

/**
 * Whether a hashed file whose encoded key starts with `head` may hold a key starting with the
 * prefix encoded as `encPrefix`.
 */
export function headMayMatch(head: string, encPrefix: string): boolean {
  return head.startsWith(encPrefix) || encPrefix.startsWith(head);
}
