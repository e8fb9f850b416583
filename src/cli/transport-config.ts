/**
 * From `converge run`'s config to what the transports and the message gate take: listener limits,
 * TLS (certificate files read here, relative to the config file like `agent`, so a missing or
 * unreadable file is one clear line before anything starts), and the message checks.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { ConfigError } from "../core/errors.ts";
import { printable } from "../core/text.ts";
import type { MessageGateOptions } from "../runtime/message-gate.ts";
import type { ListenerLimits } from "../transport/inbound.ts";
import type { TlsOptions } from "../transport/tls.ts";
import type { Config } from "./config.ts";

export function listenerLimits(config: Config): ListenerLimits {
  return {
    maxConnections: config.max_connections,
    maxBufferedBytes: Math.round(config.max_buffered_mib * 1024 * 1024),
    frameDeadlineMs: config.frame_deadline_sec * 1000,
    idleTimeoutMs: config.idle_timeout_sec * 1000,
    maxMessageElements: config.max_message_elements,
  };
}

export function messageChecks(config: Config): Pick<MessageGateOptions, "mode" | "replayWindowMs" | "maxClockSkewMs"> {
  return {
    mode: config.verify_messages,
    replayWindowMs: config.replay_window_sec * 1000,
    maxClockSkewMs: config.max_clock_skew_sec * 1000,
  };
}

/** TLS for the agents' listeners and dials, or undefined without tls_cert (a tls_ca alone verifies tls:// peers). */
export function tlsOptions(config: Config): TlsOptions | undefined {
  const dir = config.configDir ?? process.cwd();
  const ca = config.tls_ca ? readPem("tls_ca", config.tls_ca, dir) : undefined;
  if (!config.tls_cert || !config.tls_key) return ca ? { ca } : undefined;
  return {
    cert: readPem("tls_cert", config.tls_cert, dir),
    key: readPem("tls_key", config.tls_key, dir),
    ...(ca ? { ca } : {}),
    requireClientCert: config.tls_require_client_cert,
  };
}

/** A PEM file's text; ConfigError (exit 2) naming the key when it is missing, unreadable or not PEM. */
export function readPem(key: string, path: string, dir: string): string {
  const file = resolve(dir, path);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "does not exist" : code === "EACCES" ? "is not readable" : (err as Error).message;
    throw new ConfigError(`${key} file ${printable(file)} ${why}`);
  }
  if (!text.includes("-----BEGIN "))
    throw new ConfigError(`${key} file ${printable(file)} is not PEM (expected a -----BEGIN ...----- block)`);
  return text;
}
