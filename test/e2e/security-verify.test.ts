/**
 * End to end, as an attacker would try it: a `converge run` fleet on a shared SQLite store with
 * discovery. Agent X runs in one process (its identity kept in identity_dir, so this test can sign
 * as X); receivers run in others, one under verify_messages known (the default) and one under
 * strict. Raw TCP connections send them frames: forged with another key, unsigned, replayed, the
 * genuine one, and the Python original's vector frames (an unregistered Python agent).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Identity } from "../../src/core/identity.ts";
import { Message } from "../../src/core/message.ts";
import { encodeFrame } from "../../src/transport/framing.ts";
import { freePort, startCli, stopAll, type Running } from "../support/cli.ts";
import { connectRaw, metric } from "../support/hostile.ts";
import { tempDir } from "../support/tmp.ts";
import { fromHex, vectors } from "../support/vectors.ts";

const tmp = tempDir("converge-e2e-verify-");
const db = join(tmp.path, "fleet.sqlite3");

interface Receiver {
  run: Running;
  port: number;
  http: string;
}

let sender: Running;
let x: Identity; // agent X of the sender process, registered in discovery
const receivers: Record<"known" | "strict", Receiver> = {} as never;

async function start(name: string, extra: string, port: number): Promise<Running> {
  const cfg = join(tmp.path, `${name}.yaml`);
  writeFileSync(cfg, `transport: tcp\nport: ${port}\nstore_backend: sqlite\nstore_path: ${db}\n${extra}`);
  const r = startCli(["run", "-v", "-c", cfg]);
  await r.waitFor("running, press Ctrl+C to stop");
  return r;
}

beforeAll(async () => {
  sender = await start("sender", "identity_dir: ids\n", freePort());
  x = Identity.load(join(tmp.path, "ids", "agent-0.key"));
  expect(sender.stdout).toContain(x.fingerprint);
  await Promise.all(
    (["known", "strict"] as const).map(async (mode) => {
      const port = freePort();
      const http = freePort();
      const run = await start(mode, `verify_messages: ${mode}\nhttp_port: ${http}\n`, port);
      receivers[mode] = { run, port, http: `http://127.0.0.1:${http}` };
    }),
  );
}, 30_000);

afterAll(async () => {
  try {
    for (const r of [sender, ...Object.values(receivers).map((x) => x.run)]) if (r) expect(await r.stop()).toBe(0);
  } finally {
    await stopAll();
    tmp.cleanup();
  }
});

/** A message naming X as its sender, signed by someone else. */
function forgedAsX(): Message {
  const m = new Message({ sender: x.fingerprint, payload: { forged: true } });
  return m.with({ signature: Identity.generate().sign(m.signedBytes()) });
}

/** Sends the frames on one connection, in order, then a genuine marker from X; resolves once the marker arrived. */
async function sendThenMarker(r: Receiver, frames: Uint8Array[]): Promise<Message> {
  const marker = new Message({ payload: { marker: true } }).sign(x);
  const conn = await connectRaw(r.port);
  for (const f of frames) await conn.writeAll(f);
  await conn.writeAll(encodeFrame(marker));
  await r.run.waitFor(` id=${marker.id} `, 10_000, "stderr");
  conn.socket.end();
  return marker;
}

function receivedLines(r: Receiver, id: string): string[] {
  return r.run.stderr.split("\n").filter((l) => l.includes("received message") && l.includes(` id=${id} `));
}
const receivedLine = (r: Receiver, id: string) => receivedLines(r, id)[0];

/** Forged, unsigned, genuine, and the genuine one again (a replay), in that order. */
function attacks(): { genuine: Message; unsigned: Message; frames: Uint8Array[] } {
  const genuine = new Message({ payload: { genuine: true } }).sign(x);
  const unsigned = new Message({ sender: x.fingerprint, payload: { unsigned: true } });
  return { genuine, unsigned, frames: [forgedAsX(), unsigned, genuine, genuine].map((m) => encodeFrame(m)) };
}

describe.concurrent("a fleet with discovery checks every message", () => {
  test("under known: forged, unsigned and replayed messages naming a registered agent are refused; the genuine one arrives verified", async () => {
    const r = receivers.known;
    const a = attacks();
    await sendThenMarker(r, a.frames);
    expect(receivedLine(r, a.genuine.id)).toContain("verified=true");
    expect(receivedLines(r, a.genuine.id)).toHaveLength(1);
    expect(receivedLine(r, a.unsigned.id)).toBeUndefined();
    const refusals = r.run.stderr.split("\n").filter((l) => l.includes("WARN") && l.includes("refused a message"));
    expect(refusals).toEqual([
      expect.stringContaining(`claiming to be from ${x.fingerprint}: its signature does not verify`),
      expect.stringContaining(
        `claiming to be from ${x.fingerprint}: it is unsigned, and its sender is a registered agent`,
      ),
      expect.stringContaining("its id was already delivered within the replay window"),
    ]);
    for (const reason of ["bad_signature", "unsigned", "replayed"])
      expect(await metric(r.http, `converge_messages_refused_total{reason="${reason}"}`)).toBe(1);
    expect(await metric(r.http, "converge_messages_verified_total")).toBeGreaterThanOrEqual(2);
  }, 20_000);

  test("under strict: the same attacks are refused and the genuine message arrives verified", async () => {
    const r = receivers.strict;
    const a = attacks();
    await sendThenMarker(r, a.frames);
    expect(receivedLine(r, a.genuine.id)).toContain("verified=true");
    for (const reason of ["bad_signature", "unsigned", "replayed"])
      expect(await metric(r.http, `converge_messages_refused_total{reason="${reason}"}`)).toBe(1);
  }, 20_000);

  test("an unregistered Python agent's messages (the vector frames) arrive under known, unverified and flagged for their clock, and are refused under strict", async () => {
    const python = vectors.messages.map((v) => fromHex(v.frame_hex));
    await Promise.all([sendThenMarker(receivers.known, python), sendThenMarker(receivers.strict, python)]);
    for (const v of vectors.messages) {
      const line = receivedLine(receivers.known, v.message.id);
      expect(line).toContain("verified=unknown sender");
      expect(line).toMatch(/clockSkewMs=-\d+/); // the vectors were made in 2023
      expect(receivedLine(receivers.strict, v.message.id)).toBeUndefined();
    }
    const strictRefused =
      (await metric(receivers.strict.http, 'converge_messages_refused_total{reason="clock_skew"}')) +
      (await metric(receivers.strict.http, 'converge_messages_refused_total{reason="unknown_sender"}'));
    expect(strictRefused).toBe(vectors.messages.length);
    expect(await metric(receivers.known.http, "converge_messages_unverified_total")).toBe(vectors.messages.length);
  }, 20_000);
});
