/**
 * End to end: a `converge run` TCP listener against hostile connections. Crowds holding big
 * unfinished frames (memory stays bounded and comes back), a peer trickling a frame (the frame
 * deadline), a frame of 600,000 keys (the decode budget; /healthz still answers), a field name
 * carrying a newline (one escaped, bounded log line), and a thousand bad connections (a few warning
 * lines and a count). Figures (RSS) are printed; the stall is measured in scripts/bench/transport.bench.ts.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Identity } from "../../src/core/identity.ts";
import { Message } from "../../src/core/message.ts";
import { encodeFrame, frameBody } from "../../src/transport/framing.ts";
import { freePort, runCli, startCli, stopAll, type Running } from "../support/cli.ts";
import { connectRaw, memoryMiB, metric, wideFrame } from "../support/hostile.ts";
import { tempDir } from "../support/tmp.ts";
import { until } from "../support/wait.ts";

const tmp = tempDir("converge-e2e-listener-");
afterAll(async () => {
  await stopAll();
  tmp.cleanup();
});

const MiB = 1024 * 1024;

async function listener(name: string, extra = ""): Promise<{ run: Running; port: number; http: string }> {
  const port = freePort();
  const http = freePort();
  const cfg = join(tmp.path, `${name}.yaml`);
  writeFileSync(cfg, `transport: tcp\nport: ${port}\nhttp_port: ${http}\n${extra}`);
  const run = startCli(["run", "-c", cfg]);
  await run.waitFor("running, press Ctrl+C to stop");
  return { run, port, http: `http://127.0.0.1:${http}` };
}

/** Sends one signed message with `converge send` (which waits until the listener has read it). */
async function sendGood(port: number): Promise<void> {
  const r = await runCli(["send", "--to", `tcp://127.0.0.1:${port}`, "--payload", '{"still":"serving"}']);
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
}

test("40 connections each holding 8 MiB of a 10 MiB frame: RSS stays bounded and falls back once they close, and a good message still arrives", async () => {
  const { run, port, http } = await listener("crowd", "frame_deadline_sec: 120\n");
  const pid = run.proc.pid;
  const before = memoryMiB(pid);
  const chunk = new Uint8Array(64 * 1024).fill(0x61);
  const head = Buffer.concat([Buffer.from([0x00, 0xa0, 0x00, 0x00]), Buffer.from([0x81])]); // a 10 MiB frame, a map
  const conns = await Promise.all(Array.from({ length: 40 }, () => connectRaw(port)));
  await Promise.all(
    conns.map(async (c) => {
      await c.writeAll(head);
      for (let sent = 0; sent < 8 * MiB && !c.isClosed(); sent += chunk.length) await c.writeAll(chunk);
    }),
  );
  // Settled: every connection is either closed for the limit or held whole by the listener.
  let closedForBudget = 0;
  await until(
    async () => {
      closedForBudget = await metric(http, 'converge_connections_closed_total{reason="overBudget"}');
      return (await metric(http, "converge_inbound_buffered_bytes")) >= (40 - closedForBudget) * 8 * MiB;
    },
    "the listener to hold what the survivors sent",
    20_000,
    50,
  );
  const holding = 40 - closedForBudget;
  const held = memoryMiB(pid);
  expect(conns.filter((c) => !c.isClosed())).toHaveLength(holding);
  for (const c of conns) c.socket.end();
  await until(
    async () => (await metric(http, "converge_inbound_connections")) === 0,
    "the connections to close",
    10_000,
  );
  let after = memoryMiB(pid);
  await until(() => (after = memoryMiB(pid)).rss < before.rss + 96, "RSS to fall back", 30_000, 200);
  console.log(
    `RSS of converge run, 40 connections × 8 MiB of a 10 MiB frame (64 MiB buffer limit): before ${before.rss} MiB, ` +
      `holding ${held.rss} MiB (${holding} connections held, ${closedForBudget} closed for the limit), ` +
      `peak ${held.peak} MiB, after they closed ${after.rss} MiB`,
  );
  expect(holding).toBeLessThanOrEqual(8); // 64 MiB / 8 MiB
  expect(held.peak - before.rss).toBeLessThan(320); // less than the 320 MiB the peers sent
  expect(await metric(http, "converge_inbound_buffered_bytes")).toBe(0);
  await sendGood(port);
  await until(async () => (await metric(http, "converge_messages_received_total")) === 1, "the good message");
  expect(await run.stop()).toBe(0);
}, 90_000);

describe("one listener, hostile peers one after another", () => {
  let l: { run: Running; port: number; http: string };
  const warnLines = () => l.run.stderr.split("\n").filter((x) => x.includes(" WARN "));

  test("a field name carrying a newline and 2 MB of text becomes one escaped, bounded log line", async () => {
    l = await listener("hostile", "frame_deadline_sec: 1\n");
    const forged = "2026-12-01T00:00:00.000Z INFO  run: all good";
    const name = Buffer.from(`x\n${forged}${"A".repeat(2_000_000)}`);
    const key = Buffer.alloc(5 + name.length); // a str32
    key.writeUInt8(0xdb, 0);
    key.writeUInt32BE(name.length, 1);
    name.copy(key, 5);
    const wire = Buffer.from(new Message().encode());
    wire[0] = 0x8a; // 8 fields + the same unknown field twice
    const frame = frameBody(new Uint8Array(Buffer.concat([wire, key, Buffer.from([0xc0]), key, Buffer.from([0xc0])])));
    const c = await connectRaw(l.port);
    await c.writeAll(frame);
    await c.closed;
    await l.run.waitFor("appears twice", 5000, "stderr");
    const lines = l.run.stderr.split("\n");
    const mention = lines.filter((x) => x.includes("appears twice"));
    expect(mention).toHaveLength(1);
    expect(mention[0]).toContain(`undecodable frame body: message field "x\\n${forged}AAA`);
    expect(mention[0]!.length).toBeLessThan(1000);
    expect(lines.some((x) => x.startsWith(forged))).toBe(false);
  }, 20_000);

  test("a connection sending one byte a second is closed by the frame deadline", async () => {
    const c = await connectRaw(l.port);
    const frame = encodeFrame(new Message({ payload: { slow: "x".repeat(100) } }).sign(Identity.generate()));
    let at = 0;
    c.socket.write(frame.subarray(0, ++at));
    const trickle = setInterval(() => c.socket.write(frame.subarray(at, ++at)), 1000);
    try {
      await c.closed;
    } finally {
      clearInterval(trickle);
    }
    expect(at).toBeLessThan(frame.length);
    expect(await metric(l.http, 'converge_connections_closed_total{reason="frameDeadline"}')).toBe(1);
    expect(warnLines().some((x) => x.includes("a frame did not complete within 1 s of its first byte"))).toBe(true);
  }, 20_000);

  test("a 7 MB frame with 600,000 payload keys is refused, and /healthz still answers", async () => {
    const frame = wideFrame(600_000);
    expect(frame.length).toBeGreaterThan(6_500_000);
    const c = await connectRaw(l.port);
    const health = fetch(`${l.http}/healthz`);
    await c.writeAll(frame);
    await c.closed;
    expect((await health).status).toBe(200);
    expect((await fetch(`${l.http}/healthz`)).status).toBe(200);
    expect(await metric(l.http, 'converge_connections_closed_total{reason="badFrames"}')).toBeGreaterThanOrEqual(1);
    expect(warnLines().some((x) => x.includes("holds more than 100000 elements"))).toBe(true);
    await sendGood(l.port);
  }, 20_000);

  test("a thousand bad connections make a few warning lines and one count, not a thousand lines", async () => {
    const before = warnLines().length;
    for (let i = 0; i < 1000; i += 100) {
      await Promise.all(
        Array.from({ length: 100 }, async () => {
          const c = await connectRaw(l.port);
          c.socket.write(new Uint8Array([0, 0, 0, 3, 1, 2, 3]));
          await c.closed;
        }),
      );
    }
    await until(
      async () => (await metric(l.http, 'converge_connections_closed_total{reason="badFrames"}')) >= 1001,
      "the refusals",
    );
    expect(warnLines().length - before).toBeLessThanOrEqual(3);
    expect(await l.run.stop()).toBe(0); // stopping writes the count of what was held back
    const count = warnLines()
      .map((x) => /(\d+) more like this in the last [\d.]+ s: /.exec(x)?.[1])
      .filter(Boolean)
      .map(Number);
    expect(count.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(990);
  }, 60_000);
});
