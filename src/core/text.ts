/**
 * Text from outside (the wire, a file, the environment, the command line) made safe to print:
 * control characters and newlines escaped, so one value can never forge a second log line or
 * move a terminal's cursor, and long values cut, saying how long they were.
 */

/** Characters escaped by `printable`: C0 and C1 controls, DEL, line and paragraph separators, bidi overrides. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const UNSAFE_CHAR = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
const UNSAFE = new RegExp(UNSAFE_CHAR.source, "g");

/**
 * Whether `text` holds a character `printable` would escape. An unanchored test for one character:
 * JSC runs it much faster than a loop over charCodeAt, and the wire checks run it for every message.
 */
export function hasUnsafe(text: string): boolean {
  return UNSAFE_CHAR.test(text);
}

/** How many characters of a value `printable` keeps by default. */
export const PRINTABLE_MAX = 200;

/**
 * `text` with unsafe characters as `\n`, `\t`, `\u0000`…, cut to `max` characters with
 * `… (N chars)` saying the original length. Plain text comes back unchanged.
 */
export function printable(text: string, max = PRINTABLE_MAX): string {
  const cut = text.length > max ? text.slice(0, max) : text;
  const escaped = cut.replace(UNSAFE, escapeChar);
  return cut === text ? escaped : `${escaped}… (${text.length} chars)`;
}

/** `printable(text)` in double quotes, for naming a value inside a message. */
export function quoted(text: string, max = PRINTABLE_MAX): string {
  return `"${printable(text, max)}"`;
}

function escapeChar(c: string): string {
  if (c === "\n") return "\\n";
  if (c === "\r") return "\\r";
  if (c === "\t") return "\\t";
  return `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
}
