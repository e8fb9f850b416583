/** Reads a child process's output line by line; `next()` is undefined at the end (a final unterminated line is still returned). */
export function readLines(stream: ReadableStream<Uint8Array>): { next(): Promise<string | undefined> } {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  return {
    async next() {
      for (;;) {
        const nl = buf.indexOf("\n");
        if (nl >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          return line;
        }
        const { value, done } = await reader.read();
        if (done) {
          const rest = buf;
          buf = "";
          return rest || undefined;
        }
        buf += decoder.decode(value, { stream: true });
      }
    },
  };
}
