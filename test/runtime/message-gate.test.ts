import { afterEach, describe, expect, test } from "bun:test";
import type { Verification } from "../../src/core/agent.ts";
import { Agent } from "../../src/core/agent.ts";
import { Identity } from "../../src/core/identity.ts";
import { Message } from "../../src/core/message.ts";
import { IdentityRegistry } from "../../src/network/identity-registry.ts";
import { MessageGate, isVerified, verificationOf, type MessageGateOptions } from "../../src/runtime/message-gate.ts";
import { AgentRuntime } from "../../src/runtime/runtime.ts";
import { LocalHub, LocalTransport } from "../../src/transport/local.ts";
import type { KeyLookup } from "../../src/transport/transport.ts";
import { captureLogs } from "../support/transport-util.ts";
import { until } from "../support/wait.ts";

const alice = Identity.generate();
const mallory = Identity.generate();
const stranger = Identity.generate();
const registry = new IdentityRegistry();
registry.register(alice);

let restore: (() => void) | undefined;
afterEach(() => {
  restore?.();
  restore = undefined;
});

/** A gate and what it delivered, in order. */
function gate(options: MessageGateOptions = {}) {
  const g = new MessageGate({ keys: registry, ...options });
  const delivered: { m: Message; v: Verification }[] = [];
  const submit = (m: Message) => g.submit(m, (x, v) => delivered.push({ m: x, v }));
  return { g, delivered, submit };
}

const from = (who: Identity, payload: Record<string, unknown> = {}, init: { timestamp?: number } = {}) =>
  new Message({ payload, ...init }).sign(who);

/** A message naming `who` as its sender that `signer` signed (a forgery). */
const forged = (who: Identity, signer: Identity, recipient: string | null = null) => {
  const real = new Message({ sender: who.fingerprint, recipient, payload: { forged: true } });
  return real.with({ signature: signer.sign(real.signedBytes()) });
};

describe("verify_messages known (the default)", () => {
  test("a registered sender's signed message is delivered verified", () => {
    const { delivered, submit, g } = gate();
    const m = from(alice, { n: 1 });
    submit(m);
    expect(delivered.map((d) => d.v)).toEqual([{ verified: true, status: "verified", clockSkewMs: null }]);
    expect(isVerified(m)).toBe(true);
    expect(g.stats.verified).toBe(1);
  });

  test("a message naming a registered sender but unsigned, or signed by another key, is refused, counted and logged", () => {
    const logs = captureLogs("warn");
    restore = logs.restore;
    const { delivered, submit, g } = gate();
    submit(new Message({ sender: alice.fingerprint, payload: { unsigned: true } }));
    submit(forged(alice, mallory));
    expect(delivered).toEqual([]);
    expect(g.stats.refused).toMatchObject({ unsigned: 1, bad_signature: 1 });
    expect(logs.lines).toHaveLength(2);
    expect(logs.lines[0]).toContain(`refused a message claiming to be from ${alice.fingerprint}: it is unsigned`);
    expect(logs.lines[1]).toContain("its signature does not verify against its sender's registered key");
    expect(logs.lines[1]).toContain("reason=bad_signature");
  });

  test("a sender nobody registered is delivered, marked unverified, as a Python agent's unsigned messages are", () => {
    const { delivered, submit, g } = gate();
    const signed = from(stranger);
    const unsigned = new Message({ payload: { python: true } });
    submit(signed);
    submit(unsigned);
    expect(delivered.map((d) => d.v.status)).toEqual(["unknown sender", "unknown sender"]);
    expect(isVerified(signed)).toBe(false);
    expect(verificationOf(unsigned)).toEqual({ verified: false, status: "unknown sender", clockSkewMs: null });
    expect(g.stats.unverified).toBe(2);
  });

  test("a timestamp far from now is delivered but flagged with the skew", () => {
    const { delivered, submit, g } = gate({ maxClockSkewMs: 1000 });
    submit(from(alice, {}, { timestamp: Date.now() - 60_000 }));
    expect(delivered).toHaveLength(1);
    expect(delivered[0]!.v.clockSkewMs).toBeLessThan(-59_000);
    expect(g.stats.skewed).toBe(1);
  });
});

describe("verify_messages strict and off", () => {
  test("strict delivers only verified messages: unknown senders, unsigned messages and skewed clocks are refused", () => {
    const { delivered, submit, g } = gate({ mode: "strict", maxClockSkewMs: 1000 });
    submit(from(stranger));
    submit(new Message({ payload: { python: true } }));
    submit(from(alice, {}, { timestamp: Date.now() + 3_600_000 }));
    submit(from(alice, { ok: true }));
    expect(delivered.map((d) => d.m.payload)).toEqual([{ ok: true }]);
    expect(g.stats.refused).toMatchObject({ unknown_sender: 2, clock_skew: 1 });
  });

  test("off checks no signature: a forgery is delivered, marked not checked", () => {
    const { delivered, submit } = gate({ mode: "off" });
    submit(forged(alice, mallory));
    expect(delivered.map((d) => d.v)).toEqual([{ verified: false, status: "not checked", clockSkewMs: null }]);
  });
});

describe("replays", () => {
  test("a message delivered once is refused when it comes again, in every mode", () => {
    for (const mode of ["known", "strict", "off"] as const) {
      const { delivered, submit, g } = gate({ mode });
      const m = from(alice, { n: 1 });
      submit(m);
      submit(Message.decode(m.encode())); // the same bytes again, as a replaying peer sends them
      expect(delivered).toHaveLength(1);
      expect(g.stats.refused.replayed).toBe(1);
    }
  });

  test("a replay window of 0 turns the check off", () => {
    const { delivered, submit } = gate({ replayWindowMs: 0 });
    const m = from(alice);
    submit(m);
    submit(m);
    expect(delivered).toHaveLength(2);
  });

  test("the same id from two senders is two messages", () => {
    const { delivered, submit } = gate();
    const a = new Message({ id: "same", payload: {} }).sign(alice);
    const b = new Message({ id: "same", payload: {} }).sign(stranger);
    submit(a);
    submit(b);
    expect(delivered).toHaveLength(2);
  });

  test("at its bound the window forgets its oldest ids early, counts them and says so once", () => {
    const logs = captureLogs("warn");
    restore = logs.restore;
    const { submit, g } = gate({ maxReplayIds: 100 });
    const first = from(alice, { n: 0 });
    submit(first);
    for (let i = 1; i < 150; i++) submit(from(alice, { n: i }));
    expect(g.remembered).toBe(100);
    expect(g.stats.replayEvictions).toBe(50);
    expect(logs.lines.filter((l) => l.includes("the replay window is full (100 ids)"))).toHaveLength(1);
    submit(first); // forgotten: delivered again
    expect(g.stats.refused.replayed).toBe(0);
  });
});

describe("keys that must be looked up", () => {
  /** A lookup that answers only when told to, and then from its cache (as discovery's does). */
  function slowKeys(): { keys: KeyLookup; answer: (id: string, key: Identity | undefined) => void; asked: string[] } {
    const pending = new Map<string, (k: Identity | undefined) => void>();
    const known = new Map<string, Identity | undefined>();
    const asked: string[] = [];
    return {
      asked,
      keys: {
        get: (id) =>
          known.has(id)
            ? known.get(id)
            : new Promise<Identity | undefined>((resolve) => {
                asked.push(id);
                pending.set(id, resolve);
              }),
      },
      answer: (id, key) => {
        known.set(id, key);
        pending.get(id)!(key);
      },
    };
  }

  test("a sender's messages wait behind the lookup of its key, in order; other senders are not held up", async () => {
    const slow = slowKeys();
    const { delivered, submit } = gate({ keys: slow.keys });
    submit(from(alice, { n: 1 }));
    submit(from(alice, { n: 2 }));
    submit(new Message({ payload: { other: true } })); // no sender: nothing to look up
    expect(delivered.map((d) => d.m.payload)).toEqual([{ other: true }]);
    expect(slow.asked).toEqual([alice.fingerprint]);
    slow.answer(alice.fingerprint, alice);
    await until(() => delivered.length === 3, "the waiting messages");
    expect(delivered.map((d) => d.m.payload.n)).toEqual([undefined, 1, 2]);
    expect(delivered.slice(1).every((d) => d.v.verified)).toBe(true);
  });

  test("a lookup that fails refuses the message rather than delivering what it could not check", async () => {
    const { delivered, submit, g } = gate({
      keys: { get: () => Promise.reject(new Error("store unreachable")) },
    });
    submit(from(alice));
    await until(() => g.stats.refused.lookup_failed === 1, "the refusal");
    expect(delivered).toEqual([]);
  });

  test("a replay of a message still being looked up is refused once the first is delivered", async () => {
    const slow = slowKeys();
    const { delivered, submit, g } = gate({ keys: slow.keys });
    const m = from(alice);
    submit(m);
    submit(m);
    slow.answer(alice.fingerprint, alice);
    await until(() => g.stats.refused.replayed === 1, "the replay refused");
    expect(delivered).toHaveLength(1);
  });
});

describe("what handlers see", () => {
  test("onMessage's ctx says whether the message verified; an identity registry alone still means strict", async () => {
    const hub = new LocalHub();
    const seen: { n: unknown; verified: boolean; status: string }[] = [];
    class Listener extends Agent {
      override onMessage(m: Message, ctx: { verified: boolean; verification: Verification }) {
        seen.push({ n: m.payload.n, verified: ctx.verified, status: ctx.verification.status });
      }
    }
    const b = new Listener();
    const a = new Agent({ identity: alice });
    const known = new AgentRuntime(b, {
      transport: new LocalTransport({ agentId: b.id, hub }),
      keys: registry,
      pollIntervalMs: 60_000,
    });
    const ta = new LocalTransport({ agentId: a.id, hub });
    await known.start();
    await ta.start();
    try {
      await ta.send(new Message({ recipient: b.id, payload: { n: 1 } }).sign(alice));
      await ta.send(new Message({ recipient: b.id, payload: { n: 2 } }).sign(stranger));
      await ta.send(forged(alice, mallory, b.id));
      await until(() => seen.length === 2, "two messages");
      expect(seen).toEqual([
        { n: 1, verified: true, status: "verified" },
        { n: 2, verified: false, status: "unknown sender" },
      ]);
      expect(known.gate.stats.refused.bad_signature).toBe(1);
    } finally {
      await known.stop();
      await ta.stop();
    }
    expect(new AgentRuntime(new Agent(), { identityRegistry: registry }).gate.mode).toBe("strict");
    expect(new AgentRuntime(new Agent(), {}).gate.mode).toBe("known");
  });
});
