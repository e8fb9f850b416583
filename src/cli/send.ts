/** `converge send`: one signed message to an agent listening on TCP. */
import { defineCommand } from "citty";
import { ConfigError } from "../core/errors.ts";
import { Identity } from "../core/identity.ts";
import { Message } from "../core/message.ts";
import { quoted } from "../core/text.ts";
import { topic } from "../core/topic.ts";
import { configureLogging } from "../observability/log.ts";
import { TcpTransport } from "../transport/tcp.ts";
import { jsonObjectArg } from "./common.ts";

export const sendCommand = defineCommand({
  meta: {
    name: "send",
    description: "Send one signed message to tcp://HOST:PORT; prints the message id and the sender's public key (hex)",
  },
  args: {
    to: { type: "string", valueHint: "tcp://HOST:PORT", description: "Where the agent listens", required: true },
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
    verbose: { type: "boolean", alias: "v", description: "Debug logging" },
  },
  async run({ args }) {
    configureLogging({ level: args.verbose ? "debug" : "warn" });
    const m = /^tcp:\/\/(\[[^\]]+\]|[^:/]+):(\d+)\/?$/.exec(args.to ?? "");
    const port = m ? Number(m[2]) : NaN;
    if (!m || !(port >= 1 && port <= 65535))
      throw new ConfigError(`--to must be tcp://HOST:PORT with a port from 1 to 65535, got ${quoted(args.to ?? "")}`);
    const host = m[1]!.replace(/^\[|\]$/g, "");
    const payload = await jsonObjectArg("payload", args.payload);
    const identity = args.identity ? Identity.load(args.identity) : Identity.generate();
    const message = new Message({
      recipient: args.recipient ?? null,
      topics: [topic("transport.tcp", { host, port })],
      payload,
      taskId: args["task-id"] ?? null,
    }).sign(identity);
    const transport = new TcpTransport({ listen: false });
    await transport.start();
    try {
      await transport.send(message);
    } finally {
      await transport.stop();
    }
    process.stdout.write(`${message.id}\n${Buffer.from(identity.publicKey).toString("hex")}\n`);
  },
});
