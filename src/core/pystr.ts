/**
 * Python's str() and repr() for the JSON-like values that appear in topic attributes, so that
 * topic strings (which are signed) match the Python original exactly.
 */

export function pyStr(v: unknown): string {
  return typeof v === "string" ? v : pyRepr(v);
}

export function pyRepr(v: unknown): string {
  if (v === null || v === undefined) return "None";
  if (v === true) return "True";
  if (v === false) return "False";
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "number") return pyFloatOrInt(v);
  if (typeof v === "string") return pyStrRepr(v);
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(", ")}]`;
  if (v instanceof Uint8Array) return `b'${Array.from(v, pyByteRepr).join("")}'`;
  if (typeof v === "object") {
    return `{${Object.entries(v as Record<string, unknown>)
      .map(([k, x]) => `${pyStrRepr(k)}: ${pyRepr(x)}`)
      .join(", ")}}`;
  }
  return String(v);
}

/** Integers print bare; floats as Python's repr (shortest round-trip, exponent outside [1e-4, 1e16)). */
function pyFloatOrInt(n: number): string {
  if (Number.isInteger(n) && Math.abs(n) < 2 ** 53) return String(n);
  if (Number.isNaN(n)) return "nan";
  if (!Number.isFinite(n)) return n > 0 ? "inf" : "-inf";
  const abs = Math.abs(n);
  if (abs !== 0 && (abs < 1e-4 || abs >= 1e16)) {
    // JS: "1.5e-7" / "1e+21"; Python: "1.5e-07" / "1e+21": exponent has at least two digits.
    const [mant, exp] = n.toExponential().split("e") as [string, string];
    const sign = exp[0] === "-" ? "-" : "+";
    const digits = exp.replace(/^[+-]/, "").padStart(2, "0");
    return `${mant}e${sign}${digits}`;
  }
  const s = String(n);
  return s.includes(".") || s.includes("e") ? s : `${s}.0`;
}

function pyStrRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === "\\") out += "\\\\";
    else if (ch === quote) out += `\\${quote}`;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, "0")}`;
    else out += ch;
  }
  return out + quote;
}

/** One byte of a bytes repr: printable ASCII but `'` and `\` as itself, any other byte as `\xNN`. */
function pyByteRepr(b: number): string {
  return b >= 0x20 && b < 0x7f && b !== 0x27 && b !== 0x5c
    ? String.fromCharCode(b)
    : `\\x${b.toString(16).padStart(2, "0")}`;
}

/** Python's `json.dumps(v)` with its defaults: ", " and ": " separators, ASCII only. */
export function pyJsonDumps(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (v === true) return "true";
  if (v === false) return "false";
  if (typeof v === "number") {
    if (!Number.isFinite(v)) return Number.isNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity";
    return pyFloatOrInt(v);
  }
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "string")
    return JSON.stringify(v).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  if (Array.isArray(v)) return `[${v.map(pyJsonDumps).join(", ")}]`;
  if (typeof v === "object") {
    return `{${Object.entries(v as Record<string, unknown>)
      .map(([k, x]) => `${pyJsonDumps(k)}: ${pyJsonDumps(x)}`)
      .join(", ")}}`;
  }
  throw new TypeError(`cannot serialise a ${typeof v} as JSON`);
}
