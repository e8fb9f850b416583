/**
 * Transports: one-way throughput (100,000 signed messages, signed before the timed loop) and
 * round-trip latency (5,000 sequential request/replies) for local, TCP and WebSocket, in one
 * process and across two; and, in the same run, a bare Bun.listen/Bun.connect baseline sending the
 * very same frame bytes (one write per frame, the receiver only reads length prefixes), so that our
 * TCP figures print as a fraction of bare.
 *
 * The same file is its own peer process: `transport.bench.ts --peer <tcp|ws> <parentPort>` runs
 * our transport (counts one-way messages, answers pings), `--bare <sink|echo> <n>` the baseline.
 *
 * `transport.bench.ts --section hostile` runs only the last section: how long frames of 600,000
 * payload keys stall a listener's event loop (what /healthz and lease renewals would wait), with
 * the decode budget and without it, and what the message gate costs per message.
 */
import type { Socket } from "bun";
import { Identity } from "../../src/core/identity.ts";
import { Message } from "../../src/core/message.ts";
import { topic } from "../../src/core/topic.ts";
import { endpoint } from "../../src/transport/endpoint.ts";
import { encodeFrame } from "../../src/transport/framing.ts";
import { IdentityRegistry } from "../../src/network/identity-registry.ts";
import { MessageGate } from "../../src/runtime/message-gate.ts";
import { LocalHub, LocalTransport } from "../../src/transport/local.ts";
import { TcpTransport } from "../../src/transport/tcp.ts";
import type { Transport } from "../../src/transport/transport.ts";
import { WebSocketTransport } from "../../src/transport/websocket.ts";
import { fmt, percentile, report } from "./harness.ts";
import { wideFrame } from "../../test/support/hostile.ts";
import { watchLoopGaps } from "../../test/support/loop-gaps.ts";

const N = 100_000;
const RTT_N = 5_000;
const WARMUP = 20_000;
type Kind = "tcp" | "ws";
const NS: Record<Kind, string> = { tcp: "transport.tcp", ws: "transport.ws" };
type Net = TcpTransport | WebSocketTransport;
const make = (kind: Kind, o: { listen?: boolean } = {}): Net =>
  kind === "tcp" ? new TcpTransport(o) : new WebSocketTransport(o);
const route = (kind: Kind, port: number) => [topic(NS[kind], { host: "127.0.0.1", port })];
const id = Identity.generate();

/** The typical one-way message: routed by topic, a small payload; `n` tells the receiver when the run is complete. */
const oneWay = (kind: Kind | "local", port: number, i: number, to: string | null = null, n = N) =>
  new Message({
    recipient: to,
    topics: kind === "local" ? [] : route(kind, port),
    payload: { k: "one", i, n, text: "hello world" },
  });

// ---------------------------------------------------------------- peer processes

async function ourPeer(kind: Kind, parentPort: number): Promise<void> {
  const t = make(kind);
  await t.start();
  answer(t, kind, parentPort);
  console.log(t.port);
}

/**
 * The receiving side of our runs: counts one-way messages and says "done" after the n-th; answers
 * a "ping" with a pong message, and a "raw" ping with a pre-encoded pong frame (no encode).
 */
function answer(t: Net, kind: Kind, parentPort: number): void {
  const pong = new Message({ topics: route(kind, parentPort), payload: { k: "pong" } }).sign(id);
  const pongFrame = encodeFrame(pong);
  const parent = endpoint(kind, "127.0.0.1", parentPort);
  const done = new Message({ topics: route(kind, parentPort), payload: { k: "done" } }).sign(id);
  let count = 0;
  t.onMessage((m) => {
    const k = m.payload.k;
    if (k === "ping") void t.send(pong);
    else if (k === "raw") void t.sendFrame(parent, pongFrame);
    else if (k === "one" && ++count === m.payload.n) {
      count = 0;
      void t.send(done);
    }
  });
}

/** Bare baseline peer: reads length prefixes only; `sink` answers 4 bytes after every n frames (never when n is 0), `echo` returns each frame. */
function barePeer(mode: "sink" | "echo", n: number): { port: number; stop: () => void } {
  const l = Bun.listen<{ framer: Framer; writer: BareWriter }>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      binaryType: "uint8array",
      open(s) {
        const writer = new BareWriter(s);
        s.data = { writer, framer: new Framer((frame) => (mode === "echo" ? writer.write(frame) : writer.countTo(n))) };
      },
      data(s, chunk) {
        s.data.framer.push(chunk as Uint8Array);
      },
      drain(s) {
        s.data.writer.flush();
      },
    },
  });
  return { port: l.port, stop: () => l.stop(true) };
}

// ---------------------------------------------------------------- bare helpers

/** Splits a stream into length-prefixed frames without decoding them. */
class Framer {
  #buf = new Uint8Array(0);
  constructor(private readonly onFrame: (frame: Uint8Array) => void) {}
  push(chunk: Uint8Array): void {
    let buf = chunk;
    if (this.#buf.length) {
      buf = new Uint8Array(this.#buf.length + chunk.length);
      buf.set(this.#buf);
      buf.set(chunk, this.#buf.length);
    }
    let pos = 0;
    while (buf.length - pos >= 4) {
      const len = ((buf[pos]! << 24) >>> 0) + (buf[pos + 1]! << 16) + (buf[pos + 2]! << 8) + buf[pos + 3]!;
      if (buf.length - pos - 4 < len) break;
      this.onFrame(buf.subarray(pos, pos + 4 + len));
      pos += 4 + len;
    }
    this.#buf = buf.slice(pos);
  }
}

/** One socket.write per frame; what the kernel does not take waits for drain. */
class BareWriter {
  #queue: Uint8Array[] = [];
  #count = 0;
  constructor(private readonly socket: Socket<any>) {}
  write(frame: Uint8Array): void {
    if (this.#queue.length) return void this.#queue.push(frame);
    const n = this.socket.write(frame);
    if (n < frame.length) this.#queue.push(frame.subarray(Math.max(0, n)));
  }
  flush(): void {
    while (this.#queue.length) {
      const f = this.#queue[0]!;
      const n = this.socket.write(f);
      if (n < f.length) return void (this.#queue[0] = f.subarray(Math.max(0, n)));
      this.#queue.shift();
    }
  }
  countTo(n: number): void {
    if (++this.#count === n) {
      this.#count = 0;
      this.write(new Uint8Array(4));
    }
  }
}

/** A bare client: frames out one write each (or batched), and a promise per reply frame. */
async function bareClient(port: number): Promise<{
  writer: BareWriter;
  batch: (frames: Uint8Array[]) => void;
  next: () => Promise<void>;
  close: () => void;
}> {
  const waiting: (() => void)[] = [];
  let arrived = 0;
  const framer = new Framer(() => {
    const w = waiting.shift();
    if (w) w();
    else arrived++;
  });
  let writer!: BareWriter;
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: { binaryType: "uint8array", data: (_s, c) => framer.push(c as Uint8Array), drain: () => writer.flush() },
  });
  socket.setNoDelay(true);
  writer = new BareWriter(socket);
  return {
    writer,
    batch: (frames) => {
      for (let i = 0; i < frames.length; ) {
        let size = 0;
        let j = i;
        while (j < frames.length && size < 256 * 1024) size += frames[j++]!.length;
        const buf = new Uint8Array(size);
        for (let at = 0; i < j; i++) buf.set(frames[i]!, at), (at += frames[i]!.length);
        writer.write(buf);
      }
    },
    next: () => (arrived > 0 ? (arrived--, Promise.resolve()) : new Promise<void>((r) => waiting.push(r))),
    close: () => socket.end(),
  };
}

// ---------------------------------------------------------------- measurement

/** Messages per second from the first send to the receiver's last arrival. */
async function throughput(n: number, run: () => Promise<void>): Promise<number> {
  const t0 = Bun.nanoseconds();
  await run();
  return n / ((Bun.nanoseconds() - t0) / 1e9);
}

/** p50 and p99 in microseconds of `n` sequential round trips. */
async function rtt(n: number, once: (i: number) => Promise<void>): Promise<{ p50: number; p99: number }> {
  for (let i = 0; i < 500; i++) await once(i);
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = Bun.nanoseconds();
    await once(i);
    samples.push((Bun.nanoseconds() - t0) / 1000);
  }
  samples.sort((a, b) => a - b);
  return { p50: percentile(samples, 50), p99: percentile(samples, 99) };
}

/** Resolves on each arrival of a message of kind `k` on transport `t`. */
function arrivals(t: Transport, k: string): { next: () => Promise<void> } {
  const waiting: (() => void)[] = [];
  let early = 0;
  t.onMessage((m) => {
    if (m.payload.k !== k) return;
    const w = waiting.shift();
    if (w) w();
    else early++;
  });
  return { next: () => (early > 0 ? (early--, Promise.resolve()) : new Promise<void>((r) => waiting.push(r))) };
}

function sign(kind: Kind | "local", port: number, n: number, to: string | null = null): Message[] {
  return Array.from({ length: n }, (_, i) => oneWay(kind, port, i, to, n).sign(id));
}

async function sendAll(t: Transport, msgs: Message[]): Promise<void> {
  const sends: Promise<void>[] = new Array(msgs.length);
  for (let i = 0; i < msgs.length; i++) sends[i] = t.send(msgs[i]!);
  await Promise.all(sends);
}

interface Spawned {
  port: number;
  pid: number;
  kill: () => void;
}

async function spawnPeer(args: string[]): Promise<Spawned> {
  const p = Bun.spawn([process.execPath, import.meta.path, ...args], { stdout: "pipe", stderr: "inherit" });
  const reader = p.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`peer ${args.join(" ")} exited before printing its port`);
    text += new TextDecoder().decode(value);
  }
  return { port: Number(text.trim()), pid: p.pid, kill: () => p.kill() };
}

/**
 * Cross-process round trips cost ~10 µs when both processes share a vCPU and ~60 µs across two
 * (DESIGN.md), and the scheduler moves them freely: two-process round trips are measured with both
 * processes pinned to CPU 0 (when `taskset` exists), ours and bare alike, so they compare.
 */
const canPin = Bun.which("taskset") !== null;
const PLACEMENT = canPin ? "both processes pinned to CPU 0" : "placement left to the scheduler (no taskset)";
function pin(pids: number[], cpus: string): void {
  if (!canPin) return;
  for (const pid of pids)
    Bun.spawnSync(["taskset", "-a", "-p", "-c", cpus, String(pid)], { stdout: "ignore", stderr: "ignore" });
}
const ALL_CPUS = `0-${navigator.hardwareConcurrency - 1}`;

/** Runs `fn` with this process and `others` pinned to CPU 0, then unpins this one. */
async function pinned<T>(others: number[], fn: () => Promise<T>): Promise<T> {
  pin([process.pid, ...others], "0");
  try {
    return await fn();
  } finally {
    pin([process.pid], ALL_CPUS);
  }
}

const results: Record<string, number> = {};
function figure(key: string, name: string, value: number, unit: string, cond: string): void {
  results[key] = value;
  report(name, value, unit, cond);
}

// ---------------------------------------------------------------- runs

async function local(): Promise<void> {
  const hub = new LocalHub();
  const a = new LocalTransport({ agentId: "a", hub });
  const b = new LocalTransport({ agentId: "b", hub });
  await a.start();
  await b.start();
  let count = 0;
  let done: () => void = () => {};
  const pong = new Message({ recipient: "a", payload: { k: "pong" } }).sign(id);
  b.onMessage((m) => {
    if (m.payload.k === "ping") void b.send(pong);
    else if (++count === N) done();
  });
  const msgs = sign("local", 0, N, "b");
  const run = () => new Promise<void>((r) => ((count = 0), (done = r), void sendAll(a, msgs)));
  await run();
  figure(
    "local.tput",
    "local one-way",
    await throughput(N, run),
    "msg/s",
    `N=${N}, pre-signed, 1 process, delivered to a listener`,
  );
  const pongs = arrivals(a, "pong");
  const pings = Array.from({ length: RTT_N + 500 }, () =>
    new Message({ recipient: "b", payload: { k: "ping" } }).sign(id),
  );
  const r = await rtt(RTT_N, async (i) => (await a.send(pings[i]!), await pongs.next()));
  figure("local.p50", "local round trip p50", r.p50, "µs", `N=${RTT_N} sequential`);
  figure("local.p99", "local round trip p99", r.p99, "µs", `N=${RTT_N} sequential`);
  await a.stop();
  await b.stop();
}

async function ours(kind: Kind, placement: "1p" | "2p"): Promise<void> {
  const label = `${kind === "tcp" ? "TCP" : "WebSocket"} ${placement === "1p" ? "same process" : "two processes"}`;
  const a = make(kind);
  await a.start();
  let peer: Spawned | undefined;
  let b: Net | undefined;
  try {
    let port: number;
    if (placement === "2p") {
      peer = await spawnPeer(["--peer", kind, String(a.port)]);
      port = peer.port;
    } else {
      b = make(kind);
      await b.start();
      answer(b, kind, a.port);
      port = b.port;
    }
    const done = arrivals(a, "done");
    await sendAll(a, sign(kind, port, WARMUP));
    await done.next();
    const msgs = sign(kind, port, N);
    const size = encodeFrame(msgs[0]!).length;
    figure(
      `${kind}.${placement}.tput`,
      `${label} one-way`,
      await throughput(N, async () => (await sendAll(a, msgs), await done.next())),
      "msg/s",
      `N=${N}, pre-signed outside the timed loop, ${size} B frames, encode+decode included`,
    );
    const pongs = arrivals(a, "pong");
    const pings = Array.from({ length: RTT_N + 500 }, () =>
      new Message({ topics: route(kind, port), payload: { k: "ping" } }).sign(id),
    );
    const once = async (i: number) => (await a.send(pings[i]!), await pongs.next());
    const r = peer ? await pinned([peer.pid], () => rtt(RTT_N, once)) : await rtt(RTT_N, once);
    const cond = `N=${RTT_N} sequential request/reply${peer ? `, ${PLACEMENT}` : ""}`;
    figure(`${kind}.${placement}.p50`, `${label} round trip p50`, r.p50, "µs", cond);
    figure(`${kind}.${placement}.p99`, `${label} round trip p99`, r.p99, "µs", cond);
    // The same round trip with both frames encoded beforehand: what the transport costs beyond encoding.
    const raw = encodeFrame(new Message({ topics: route(kind, port), payload: { k: "raw" } }).sign(id));
    const to = endpoint(kind, "127.0.0.1", port);
    const onceRaw = async () => (await a.sendFrame(to, raw), await pongs.next());
    const rr = peer ? await pinned([peer.pid], () => rtt(RTT_N, onceRaw)) : await rtt(RTT_N, onceRaw);
    figure(
      `${kind}.${placement}.raw.p50`,
      `${label} round trip p50, pre-encoded`,
      rr.p50,
      "µs",
      `${cond}, frames encoded beforehand (decode still included)`,
    );
  } finally {
    peer?.kill();
    await b?.stop();
    await a.stop();
  }
}

/**
 * Our TCP send path alone: pre-encoded frames through TcpTransport.sendFrame to a bare frame
 * counter in another process, timed until every send resolved (the kernel took every frame).
 */
async function sendPathOnly(frames: Uint8Array[]): Promise<void> {
  const sink = await spawnPeer(["--bare", "sink", "0"]);
  const a = new TcpTransport({ listen: false });
  await a.start();
  try {
    const to = endpoint("tcp", "127.0.0.1", sink.port);
    const run = () => Promise.all(frames.map((f) => a.sendFrame(to, f))).then(() => {});
    await run();
    figure(
      "tcp.sendpath",
      "TCP send path only (frames written)",
      await throughput(frames.length, run),
      "msg/s",
      `N=${frames.length}, pre-encoded frames via sendFrame, 2 processes, until the kernel took every frame`,
    );
  } finally {
    sink.kill();
    await a.stop();
  }
}

async function bare(frames: Uint8Array[], placement: "1p" | "2p"): Promise<void> {
  const label = `bare Bun.listen/connect ${placement === "1p" ? "same process" : "two processes"}`;
  let kill = () => {};
  let sinkPort: number;
  let echoPort: number;
  let echoPid: number | undefined;
  if (placement === "2p") {
    const sink = await spawnPeer(["--bare", "sink", String(frames.length)]);
    const echo = await spawnPeer(["--bare", "echo", "0"]);
    kill = () => (sink.kill(), echo.kill());
    [sinkPort, echoPort, echoPid] = [sink.port, echo.port, echo.pid];
  } else {
    const sink = barePeer("sink", frames.length);
    const echo = barePeer("echo", 0);
    kill = () => (sink.stop(), echo.stop());
    [sinkPort, echoPort] = [sink.port, echo.port];
  }
  try {
    const c = await bareClient(sinkPort);
    const perFrame = async () => {
      for (const f of frames) c.writer.write(f);
      await c.next();
    };
    await perFrame();
    figure(
      `bare.${placement}.tput`,
      `${label} one-way`,
      await throughput(frames.length, perFrame),
      "msg/s",
      `N=${frames.length}, same ${frames[0]!.length} B frames, 1 write per frame, prefixes parsed, no decode`,
    );
    const batched = async () => (c.batch(frames), await c.next());
    figure(
      `bare.${placement}.batched`,
      `${label} one-way, batched writes`,
      await throughput(frames.length, batched),
      "msg/s",
      `N=${frames.length}, 256 KiB writes`,
    );
    c.close();
    const e = await bareClient(echoPort);
    const once = async (i: number) => (e.writer.write(frames[i]!), await e.next());
    const r = echoPid ? await pinned([echoPid], () => rtt(RTT_N, once)) : await rtt(RTT_N, once);
    const cond = `N=${RTT_N} sequential echo${echoPid ? `, ${PLACEMENT}` : ""}`;
    figure(`bare.${placement}.p50`, `${label} round trip p50`, r.p50, "µs", cond);
    figure(`bare.${placement}.p99`, `${label} round trip p99`, r.p99, "µs", cond);
    e.close();
  } finally {
    kill();
  }
}

async function main(): Promise<void> {
  console.log(
    `# ${navigator.hardwareConcurrency} cores; round trips and cross-process figures depend on placement (DESIGN.md pitfalls)`,
  );
  // Codec ceilings in this run, for reading the transport figures.
  // Encodings are kept with each message, so encoding one message again would time a cache hit:
  // encode fresh messages (a signed one's fields and signature, built before the timed loop).
  const sample = oneWay("tcp", 9000, 1).sign(id);
  const wire = sample.encode();
  const M = 100_000;
  const fresh = () =>
    Array.from({ length: M }, (_, i) =>
      oneWay("tcp", 9000, i).with({ sender: sample.sender, signature: sample.signature }),
    );
  for (const m of fresh().slice(0, 20_000)) m.encode();
  let unencoded = fresh();
  let t0 = Bun.nanoseconds();
  for (let i = 0; i < M; i++) unencoded[i]!.encode();
  figure(
    "codec.encode",
    "Message.encode (codec ceiling)",
    M / ((Bun.nanoseconds() - t0) / 1e9),
    "msg/s",
    `N=${M}, fresh messages (nothing cached), ~${wire.length} B wire map`,
  );
  unencoded = fresh();
  t0 = Bun.nanoseconds();
  for (let i = 0; i < M; i++) encodeFrame(unencoded[i]!);
  figure(
    "codec.frame",
    "encodeFrame (what a send encodes)",
    M / ((Bun.nanoseconds() - t0) / 1e9),
    "msg/s",
    `N=${M}, fresh messages, length prefix + wire map`,
  );
  unencoded = [];
  t0 = Bun.nanoseconds();
  for (let i = 0; i < M; i++) Message.decode(wire);
  figure(
    "codec.decode",
    "Message.decode (codec ceiling)",
    M / ((Bun.nanoseconds() - t0) / 1e9),
    "msg/s",
    `N=${M}, ${wire.length} B wire map`,
  );

  await local();
  await ours("tcp", "1p");
  await ours("tcp", "2p");
  await ours("ws", "1p");
  await ours("ws", "2p");
  const frames = sign("tcp", 9000, N).map(encodeFrame);
  await bare(frames, "1p");
  await bare(frames, "2p");
  await sendPathOnly(frames);
  await hostile();

  const ratio = (a: string, b: string) => fmt(results[a]! / results[b]!);
  console.log("\n# our TCP as a fraction of bare (aim: throughput ≥ 0.5, p50 round trip ≤ 2x)");
  for (const p of ["1p", "2p"] as const) {
    const where = p === "1p" ? "same process" : "two processes";
    console.log(
      `TCP ${where}: throughput ${ratio(`tcp.${p}.tput`, `bare.${p}.tput`)} of bare (1 write/frame), ${ratio(`tcp.${p}.tput`, `bare.${p}.batched`)} of bare batched; p50 round trip ${ratio(`tcp.${p}.p50`, `bare.${p}.p50`)}x bare, p99 ${ratio(`tcp.${p}.p99`, `bare.${p}.p99`)}x`,
    );
  }
  console.log(
    `TCP send path alone (pre-encoded frames, sendFrame; it coalesces writes): ${ratio("tcp.sendpath", "bare.2p.batched")} of bare batched, ${ratio("tcp.sendpath", "bare.2p.tput")} of bare 1 write/frame (two processes)`,
  );
  console.log(
    `TCP round trip with frames pre-encoded: p50 ${ratio("tcp.1p.raw.p50", "bare.1p.p50")}x bare (same process), ${ratio("tcp.2p.raw.p50", "bare.2p.p50")}x (two processes)`,
  );
  console.log(
    `codec share: one fresh message costs ${fmt(1e6 / results["codec.encode"]!)} µs to encode (${fmt(1e6 / results["codec.frame"]!)} µs framed) and ${fmt(1e6 / results["codec.decode"]!)} µs to decode here; a round trip does each twice`,
  );
}

// ---------------------------------------------------------------- hostile input

/** The sending side, in its own process: six connections, one wide frame each, written whole. */
async function wideSender(port: number): Promise<void> {
  const frame = wideFrame(600_000);
  await Promise.all(
    Array.from({ length: 6 }, async () => {
      let drained: (() => void) | undefined;
      let closed = false;
      const s = await Bun.connect({
        hostname: "127.0.0.1",
        port,
        socket: { data() {}, drain: () => drained?.(), close: () => ((closed = true), drained?.()), error() {} },
      });
      for (let at = 0; at < frame.length && !closed; ) {
        const n = s.write(frame.subarray(at));
        if (n < 0) break;
        at += n;
        if (at < frame.length) await new Promise<void>((r) => (drained = r));
      }
      s.end();
    }),
  );
  console.log("sent");
}

/**
 * Six 7 MB frames of 600,000 keys sent to a TCP listener in this process by another process, one
 * connection each; a 1 ms timer records the longest gap between its ticks (the event loop stalled
 * that long: what /healthz and lease renewals would have waited).
 */
async function stall(maxMessageElements: number | undefined): Promise<{ maxGapMs: number; totalMs: number }> {
  const t = new TcpTransport({ limits: maxMessageElements ? { maxMessageElements } : {} });
  await t.start();
  let delivered = 0;
  t.onMessage(() => delivered++);
  // The sender starts first (spawning blocks this process a little); it needs tens of ms to connect.
  const sender = Bun.spawn([process.execPath, import.meta.path, "--wide-sender", String(t.port)], {
    stdout: "pipe",
    stderr: "inherit",
  });
  const gaps = watchLoopGaps(1);
  const t0 = performance.now();
  await sender.exited;
  // Until every frame was refused (connections closed) or, without the budget, delivered.
  const refused = () => t.inbound.stats.badFrames;
  while (refused() + delivered < 6) await Bun.sleep(1);
  const totalMs = performance.now() - t0;
  gaps.stop();
  await t.stop();
  return { maxGapMs: gaps.maxGapMs, totalMs };
}

async function hostile(): Promise<void> {
  console.log("\n# hostile input: a listener's event loop while it reads six 7 MB frames of 600,000 payload keys");
  // The same timer with nothing to do: what the machine's scheduling alone costs (high under load).
  const idle = watchLoopGaps(1);
  await Bun.sleep(1000);
  idle.stop();
  figure(
    "stall.idle",
    "longest event-loop gap, idle (the floor)",
    idle.maxGapMs,
    "ms",
    "1 ms timer for 1 s, no traffic",
  );
  const refused = await stall(undefined);
  figure(
    "stall.budget",
    "longest event-loop stall, decode budget on",
    refused.maxGapMs,
    "ms",
    `N=6 frames × 600,000 keys (${fmt(wideFrame(600_000).length / 1e6)} MB), default budget 100,000 elements: refused on each frame's first piece; all six in ${fmt(refused.totalMs)} ms`,
  );
  const decoded = await stall(Number.MAX_SAFE_INTEGER);
  figure(
    "stall.nobudget",
    "longest event-loop stall, decode budget off",
    decoded.maxGapMs,
    "ms",
    `N=6 frames × 600,000 keys, each decoded in full (what happened before the budget); all six in ${fmt(decoded.totalMs)} ms`,
  );

  // The message gate: one Ed25519 verify per message of a registered sender, nothing else per message.
  const signer = Identity.generate();
  const registry = new IdentityRegistry();
  registry.register(signer);
  const M = 20_000;
  const msgs = Array.from({ length: M + 2000 }, (_, i) =>
    Message.decode(new Message({ payload: { i } }).sign(signer).encode()),
  );
  const gate = new MessageGate({ keys: registry });
  let delivered = 0;
  for (let i = 0; i < 2000; i++) gate.submit(msgs[M + i]!, () => delivered++);
  let t0 = Bun.nanoseconds();
  for (let i = 0; i < M; i++) gate.submit(msgs[i]!, () => delivered++);
  figure(
    "gate.known",
    "message gate (known, registered sender)",
    M / ((Bun.nanoseconds() - t0) / 1e9),
    "msg/s",
    `N=${M} decoded signed messages, 1 core: signature check, replay window, clock skew`,
  );
  const fresh = Array.from({ length: M }, (_, i) =>
    Message.decode(new Message({ payload: { i } }).sign(signer).encode()),
  );
  t0 = Bun.nanoseconds();
  for (const m of fresh) m.verify(signer);
  figure(
    "gate.verify",
    "Message.verify alone (the floor)",
    M / ((Bun.nanoseconds() - t0) / 1e9),
    "msg/s",
    `N=${M} decoded signed messages, 1 core`,
  );
  if (delivered !== M + 2000) throw new Error(`the gate delivered ${delivered} of ${M + 2000}`);
}

const [role, a1, a2] = process.argv.slice(2);
if (role === "--section" && a1 === "hostile") await hostile();
else if (role === "--wide-sender") await wideSender(Number(a1));
else if (role === "--peer") await ourPeer(a1 as Kind, Number(a2));
else if (role === "--bare") console.log(barePeer(a1 as "sink" | "echo", Number(a2)).port);
else {
  await main();
  process.exit(0);
}
