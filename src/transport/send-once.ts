/**
 * One frame on a connection of its own, confirmed: for `converge send`, where "written to the
 * socket" is not enough (a peer that accepts and then resets the connection would look like a
 * success). The frame is written whole, our side of the connection is shut down (half-close), and
 * then the peer's orderly close is awaited: a peer that closes cleanly after our FIN has read
 * everything (closing with unread bytes makes the kernel send a reset instead). A reset or error
 * is a failure; a peer that keeps the connection open past `lingerMs` without resetting it is
 * taken to have read the frame.
 */
import type { Socket } from "bun";
import { TransportError } from "../core/errors.ts";
import { dial } from "./dial.ts";
import type { Endpoint } from "./endpoint.ts";
import { dialHandshakeFailure, dialTls, type TlsOptions } from "./tls.ts";

export interface SendOnceOptions {
  /** Dial with TLS (for tls:// endpoints): the CA to verify the peer, and a client certificate. */
  tls?: TlsOptions;
  /** Give up connecting (TLS handshake included) after this long. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** How long to wait for the peer's close after our half-close. Default 2000 ms. */
  lingerMs?: number;
}

interface State {
  handshake: PromiseWithResolvers<void>;
  closed: PromiseWithResolvers<Error | null>;
  drained: (() => void) | undefined;
  error: Error | null;
}

export async function sendFrameOnce(to: Endpoint, frame: Uint8Array, options: SendOnceOptions = {}): Promise<void> {
  const tls = to.scheme === "tls" ? dialTls(options.tls) : undefined;
  const state: State = {
    handshake: Promise.withResolvers(),
    closed: Promise.withResolvers(),
    drained: undefined,
    error: null,
  };
  state.handshake.promise.catch(() => {}); // rejected by every close, awaited only with TLS
  const fail = (why: string, cause?: unknown) => new TransportError(`cannot send to ${to.address}: ${why}`, { cause });
  const socket = await dial<State>({
    connect: {
      hostname: to.host,
      port: to.port,
      allowHalfOpen: true,
      data: state,
      ...(tls ? { tls } : {}),
      socket: {
        data() {},
        drain: (s) => s.data.drained?.(),
        handshake: (s, ok, err) => (ok ? s.data.handshake.resolve() : s.data.handshake.reject(err)),
        error: (s, err) => void (s.data.error = err),
        close: (s, err) => {
          s.data.handshake.reject(err ?? s.data.error);
          s.data.closed.resolve(err ?? s.data.error ?? null);
        },
      },
    },
    handshake: tls ? state.handshake.promise : undefined,
    timeoutMs: options.connectTimeoutMs ?? 5000,
    fail,
  });

  try {
    await writeAll(socket, frame, state);
  } catch (err) {
    socket.terminate();
    throw fail((err as Error).message, err);
  }
  socket.shutdown();
  let linger: ReturnType<typeof setTimeout> | undefined;
  const outcome = await Promise.race([
    state.closed.promise,
    new Promise<"linger">((r) => (linger = setTimeout(() => r("linger"), options.lingerMs ?? 2000))),
  ]);
  clearTimeout(linger);
  if (outcome === "linger") {
    socket.end();
    return;
  }
  if (outcome !== null) {
    const code = (outcome as { code?: string }).code;
    // Over TLS 1.3 a listener refuses a client certificate after our side finished the handshake.
    if (tls && code === "EPROTO")
      throw fail(dialHandshakeFailure(outcome as { code?: string; message?: string }), outcome);
    const hint = !tls
      ? "; if it listens with TLS, use tls://"
      : "; a listener that requires client certificates does this when it does not accept ours";
    throw fail(
      code === "ECONNRESET" || code === "EPIPE"
        ? `the peer reset the connection before confirming it read the message (${code}${hint})`
        : `the connection failed before the peer confirmed it read the message (${code ?? outcome.message})`,
      outcome,
    );
  }
}

/** Writes every byte, waiting for drain when the kernel takes only part; throws when the connection dies. */
async function writeAll(socket: Socket<State>, bytes: Uint8Array, state: State): Promise<void> {
  const dead = state.closed.promise.then((err) => {
    throw new Error(describeClose(err, "the connection closed before the message was written"));
  });
  dead.catch(() => {}); // raced below; not an unhandled rejection when the write finishes first
  let at = 0;
  while (at < bytes.length) {
    const n = socket.write(at === 0 ? bytes : bytes.subarray(at));
    if (n < 0) await dead;
    at += Math.max(0, n);
    if (at < bytes.length) {
      await Promise.race([new Promise<void>((r) => (state.drained = r)), dead]);
      state.drained = undefined;
    }
  }
}

function describeClose(err: Error | null, fallback: string): string {
  const code = (err as { code?: string } | null)?.code;
  if (code === "ECONNRESET" || code === "EPIPE") return `the peer reset the connection (${code})`;
  return err ? `${fallback} (${code ?? err.message})` : fallback;
}
