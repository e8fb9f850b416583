/**
 * The format and CPU architecture of an executable, read from its header: ELF (Linux), Mach-O
 * (macOS) or PE (Windows), x86-64 or arm64. scripts/release.ts checks every binary it builds with
 * this. Hand-written rather than shelling out to `file`: it is a few fixed offsets of three
 * published formats, and it works the same on every machine a release is built on (Windows and
 * minimal containers have no `file`).
 */

export type ExecutableFormat = "ELF" | "Mach-O" | "PE";
export type Architecture = "x86-64" | "arm64";

export interface Executable {
  format: ExecutableFormat;
  arch: Architecture;
}

/** Reads the header of the file at `path`; throws when it is not a 64-bit executable of a known kind. */
export async function readExecutable(path: string): Promise<Executable> {
  // The PE header sits at the offset e_lfanew (a few hundred bytes in); 64 KiB covers any sane file.
  return parseExecutable(new Uint8Array(await Bun.file(path).slice(0, 65536).arrayBuffer()), path);
}

export function parseExecutable(bytes: Uint8Array, what = "the file"): Executable {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u16 = (at: number) => (at + 2 <= bytes.length ? view.getUint16(at, true) : -1);
  const u32 = (at: number) => (at + 4 <= bytes.length ? view.getUint32(at, true) : -1);
  const fail = (why: string): never => {
    throw new Error(`${what} is not a known executable: ${why}`);
  };

  // ELF: 7f 'E' 'L' 'F', class (2 = 64-bit), data (1 = little-endian), ..., e_machine at 0x12.
  if (u32(0) === 0x464c457f) {
    if (bytes[4] !== 2 || bytes[5] !== 1) fail("ELF but not 64-bit little-endian");
    const machine = u16(0x12);
    if (machine === 0x3e) return { format: "ELF", arch: "x86-64" };
    if (machine === 0xb7) return { format: "ELF", arch: "arm64" };
    return fail(`ELF for machine 0x${machine.toString(16)}`);
  }
  // Mach-O 64-bit, little-endian: magic 0xfeedfacf, then cputype (CPU_ARCH_ABI64 | x86 7 or arm 12).
  if (u32(0) === 0xfeedfacf) {
    const cpu = u32(4);
    if (cpu === 0x01000007) return { format: "Mach-O", arch: "x86-64" };
    if (cpu === 0x0100000c) return { format: "Mach-O", arch: "arm64" };
    return fail(`Mach-O for CPU type 0x${cpu.toString(16)}`);
  }
  // PE: "MZ", e_lfanew at 0x3c pointing at "PE\0\0", then the COFF machine; PE32+ optional header (0x20b).
  if (u16(0) === 0x5a4d) {
    const pe = u32(0x3c);
    if (pe < 0 || u32(pe) !== 0x00004550) fail("MZ header without a PE signature");
    if (u16(pe + 24) !== 0x20b) fail("PE but not PE32+ (64-bit)");
    const machine = u16(pe + 4);
    if (machine === 0x8664) return { format: "PE", arch: "x86-64" };
    if (machine === 0xaa64) return { format: "PE", arch: "arm64" };
    return fail(`PE for machine 0x${machine.toString(16)}`);
  }
  return fail("no ELF, Mach-O or PE header");
}

/** What a release target must be, e.g. linux-arm64 → ELF arm64. */
export function expectedExecutable(target: string): Executable {
  const [os, cpu] = target.split("-");
  const format = ({ linux: "ELF", darwin: "Mach-O", windows: "PE" } as const)[os as "linux"];
  const arch = ({ x64: "x86-64", arm64: "arm64" } as const)[cpu as "x64"];
  if (!format || !arch) throw new Error(`unknown release target ${target}`);
  return { format, arch };
}
