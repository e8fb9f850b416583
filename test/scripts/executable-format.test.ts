import { describe, expect, test } from "bun:test";
import { NATIVE_TARGET } from "../../scripts/build.ts";
import { expectedExecutable, parseExecutable, readExecutable } from "../../scripts/executable-format.ts";

/** The smallest headers of each format that carry what the reader looks at (offsets from each format's spec). */
function elf(machine: number, klass = 2): Uint8Array {
  const b = new Uint8Array(64);
  b.set([0x7f, 0x45, 0x4c, 0x46, klass, 1]);
  new DataView(b.buffer).setUint16(0x12, machine, true);
  return b;
}
function macho(cpu: number): Uint8Array {
  const b = new Uint8Array(32);
  const v = new DataView(b.buffer);
  v.setUint32(0, 0xfeedfacf, true);
  v.setUint32(4, cpu, true);
  return b;
}
function pe(machine: number, optionalMagic = 0x20b): Uint8Array {
  const b = new Uint8Array(0x200);
  const v = new DataView(b.buffer);
  b.set([0x4d, 0x5a]);
  v.setUint32(0x3c, 0x80, true);
  b.set([0x50, 0x45, 0, 0], 0x80);
  v.setUint16(0x84, machine, true);
  v.setUint16(0x98, optionalMagic, true);
  return b;
}

describe("reading an executable's format and architecture", () => {
  test("when given each format's header, it names the format and the CPU", () => {
    expect(parseExecutable(elf(0x3e))).toEqual({ format: "ELF", arch: "x86-64" });
    expect(parseExecutable(elf(0xb7))).toEqual({ format: "ELF", arch: "arm64" });
    expect(parseExecutable(macho(0x01000007))).toEqual({ format: "Mach-O", arch: "x86-64" });
    expect(parseExecutable(macho(0x0100000c))).toEqual({ format: "Mach-O", arch: "arm64" });
    expect(parseExecutable(pe(0x8664))).toEqual({ format: "PE", arch: "x86-64" });
    expect(parseExecutable(pe(0xaa64))).toEqual({ format: "PE", arch: "arm64" });
  });

  test("when the file is not a 64-bit executable it knows, it says why", () => {
    expect(() => parseExecutable(elf(0x3e, 1), "x")).toThrow("x is not a known executable: ELF but not 64-bit");
    expect(() => parseExecutable(elf(0x28))).toThrow("ELF for machine 0x28");
    expect(() => parseExecutable(macho(0x12))).toThrow("Mach-O for CPU type 0x12");
    expect(() => parseExecutable(pe(0x8664, 0x10b))).toThrow("not PE32+");
    expect(() => parseExecutable(pe(0x1c0))).toThrow("PE for machine 0x1c0");
    expect(() => parseExecutable(new TextEncoder().encode("#!/bin/sh\n"))).toThrow("no ELF, Mach-O or PE header");
    expect(() => parseExecutable(new Uint8Array([0x4d, 0x5a]))).toThrow("MZ header without a PE signature");
  });

  test("when reading the Bun that runs this test, it finds this machine's format and CPU", async () => {
    expect(await readExecutable(process.execPath)).toEqual(expectedExecutable(NATIVE_TARGET));
  });

  test("each release target expects its platform's format and its CPU", () => {
    expect(expectedExecutable("linux-x64-baseline")).toEqual({ format: "ELF", arch: "x86-64" });
    expect(expectedExecutable("darwin-arm64")).toEqual({ format: "Mach-O", arch: "arm64" });
    expect(expectedExecutable("windows-x64")).toEqual({ format: "PE", arch: "x86-64" });
    expect(() => expectedExecutable("freebsd-x64")).toThrow("unknown release target freebsd-x64");
  });
});
