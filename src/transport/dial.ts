/**
 * Dialling a TCP peer, with TLS or without: what the pooled connection (tcp-peer.ts) and the
 * confirmed one-off send (send-once.ts) share, so that both give up at the same moment, say why
 * in the same words, and leak no socket: a connection that completes after the timeout is closed,
 * and one whose TLS handshake failed or timed out is terminated.
 */
import type { Socket, TCPSocketConnectOptions } from "bun";
import { dialFailure } from "./peer.ts";
import { dialHandshakeFailure } from "./tls.ts";

export interface Dial<T> {
  /** Bun.connect's options; with `tls` set, `handshake` must be given too. */
  connect: TCPSocketConnectOptions<T>;
  /**
   * Settles when the TLS handshake does: the caller's socket handlers resolve it, or reject it
   * with the socket's error (a failed handshake, a close during it).
   */
  handshake?: Promise<void>;
  /** Give up connecting (TLS handshake included) after this long. */
  timeoutMs: number;
  /** The error to throw for `why` (the caller names the peer and what it was doing). */
  fail: (why: string, cause?: unknown) => Error;
}

/** The connected socket (its handshake done, with TLS); else throws `fail(why)`. */
export async function dial<T>({ connect, handshake, timeoutMs, fail }: Dial<T>): Promise<Socket<T>> {
  handshake?.catch(() => {}); // a close with no one waiting yet (connect failed) is not an unhandled rejection
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(fail(`no connection after ${timeoutMs} ms`)), timeoutMs);
  });
  const connecting = Bun.connect<T>(connect);
  let socket: Socket<T>;
  try {
    try {
      socket = await Promise.race([
        connecting.catch((err) => {
          throw fail(dialFailure((err as { code?: string }).code, (err as Error).message), err);
        }),
        timeout,
      ]);
    } catch (err) {
      // A connection that completes after the timeout is closed rather than leaked.
      connecting.then(
        (late) => late.end(),
        () => {},
      );
      throw err;
    }
    if (handshake) {
      await Promise.race([
        handshake.catch((err) => {
          throw fail(dialHandshakeFailure(err as { code?: string; message?: string } | null), err);
        }),
        timeout,
      ]).catch((err) => {
        socket.terminate();
        throw err;
      });
    }
  } finally {
    clearTimeout(timer);
  }
  return socket;
}
