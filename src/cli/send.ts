/**
 * `converge send`: one signed message to an agent listening on TCP (tcp://) or TCP with TLS
 * (tls://). It succeeds only once the peer has read the bytes (transport/send-once.ts): a peer that
 * resets the connection after accepting it is a failure (exit 1, with the reason).
 */
import { defineCommand } from "citty";
import { ConfigError } from "../core/errors.ts";
import { Identity } from "../core/identity.ts";
import { Message } from "../core/message.ts";
import { quoted } from "../core/text.ts";
import { topic } from "../core/topic.ts";
import { configureLogging, outputLine } from "../observability/log.ts";
import { endpoint } from "../transport/endpoint.ts";
import { encodeFrame } from "../transport/framing.ts";
import { sendFrameOnce } from "../transport/send-once.ts";
import type { TlsOptions } from "../transport/tls.ts";
import { jsonObjectArg } from "./common.ts";
import { readPem } from "./transport-config.ts";

export const sendCommand = defineCommand({
  meta: {
    name: "send",
    description:
      "Send one signed message to tcp://HOST:PORT or tls://HOST:PORT; prints the message id and " +
      "the sender's public key (hex) once the peer has read it",
  },
  args: {
    to: {
      type: "string",
      valueHint: "tcp://HOST:PORT",
      description: "Where the agent listens (tls://HOST:PORT for a TLS listener)",
      required: true,
    },
    recipient: {
      type: "string",
      valueHint: "ID",
      description: "The recipient agent's id (default: a broadcast to whoever listens there)",
    },
    payload: {
      type: "string",
      valueHint: "JSON|@FILE|-",
      description: "The payload, a JSON object (default {}); @FILE reads it from a file, - from standard input",
    },
    "task-id": { type: "string", description: "The task this message is about" },
    identity: {
      type: "string",
      valueHint: "FILE",
      description: "Sign with this identity file (mode 0600) instead of a fresh identity",
    },
    "tls-ca": {
      type: "string",
      valueHint: "FILE",
      description: "With tls://: the PEM CA bundle the listener's certificate must chain to (default: the system's)",
    },
    "tls-cert": {
      type: "string",
      valueHint: "FILE",
      description: "With tls://: a PEM client certificate, for a listener that requires one (with --tls-key)",
    },
    "tls-key": { type: "string", valueHint: "FILE", description: "With tls://: the private key of --tls-cert" },
    verbose: { type: "boolean", alias: "v", description: "Debug logging" },
  },
  async run({ args }) {
    configureLogging({ level: args.verbose ? "debug" : "warn" });
    const m = /^(tcp|tls):\/\/(\[[^\]]+\]|[^:/]+):(\d+)\/?$/.exec(args.to ?? "");
    const port = m ? Number(m[3]) : NaN;
    if (!m || !(port >= 1 && port <= 65535))
      throw new ConfigError(
        `--to must be tcp://HOST:PORT or tls://HOST:PORT with a port from 1 to 65535, got ${quoted(args.to ?? "")}`,
      );
    const scheme = m[1]!;
    const host = m[2]!.replace(/^\[|\]$/g, "");
    const tls = tlsArgs(args, scheme);
    const payload = await jsonObjectArg("payload", args.payload);
    const identity = args.identity ? Identity.load(args.identity) : Identity.generate();
    const message = new Message({
      recipient: args.recipient ?? null,
      topics: [topic("transport.tcp", { host, port })],
      payload,
      taskId: args["task-id"] ?? null,
    }).sign(identity);
    await sendFrameOnce(endpoint(scheme, host, port), encodeFrame(message), { tls });
    outputLine(`${message.id}\n${Buffer.from(identity.publicKey).toString("hex")}`);
  },
});

function tlsArgs(args: Record<string, unknown>, scheme: string): TlsOptions | undefined {
  const ca = args["tls-ca"] as string | undefined;
  const cert = args["tls-cert"] as string | undefined;
  const key = args["tls-key"] as string | undefined;
  if (scheme !== "tls") {
    if (ca || cert || key) throw new ConfigError("--tls-ca, --tls-cert and --tls-key need --to tls://HOST:PORT");
    return undefined;
  }
  if (!cert !== !key) throw new ConfigError("--tls-cert and --tls-key go together (a client certificate and its key)");
  const dir = process.cwd();
  return {
    ...(ca ? { ca: readPem("--tls-ca", ca, dir) } : {}),
    ...(cert && key ? { cert: readPem("--tls-cert", cert, dir), key: readPem("--tls-key", key, dir) } : {}),
  };
}
