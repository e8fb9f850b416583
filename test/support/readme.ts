/**
 * Code from README.md, for tests that run it exactly as written (so README and tests cannot drift):
 * the fenced blocks of a section, or its indented (4-space) command blocks.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

const README = join(import.meta.dir, "..", "..", "README.md");

/** The text of the section under `## <title>`, up to the next `## ` heading. */
export function readmeSection(title: string): string {
  const text = readFileSync(README, "utf8");
  const start = text.indexOf(`\n## ${title}\n`);
  if (start < 0) throw new Error(`README.md has no section "## ${title}"`);
  const end = text.indexOf("\n## ", start + 1);
  return text.slice(start, end < 0 ? undefined : end);
}

/** The section's ```ts blocks that start with a `// <file name>` line, by that file name. */
export function readmePrograms(title: string): Map<string, string> {
  const programs = new Map<string, string>();
  for (const m of readmeSection(title).matchAll(/^```ts\n(\/\/ (\S+\.ts)\n[\s\S]*?)^```$/gm))
    programs.set(m[2]!, m[1]!);
  return programs;
}

/** The section's indented code blocks (outside fences), each as its lines without the indent. */
export function readmeCommandBlocks(title: string): string[][] {
  const blocks: string[][] = [];
  let current: string[] | undefined;
  let fenced = false;
  for (const line of readmeSection(title).split("\n")) {
    if (line.startsWith("```")) fenced = !fenced;
    if (!fenced && line.startsWith("    ")) {
      if (!current) blocks.push((current = []));
      current.push(line.slice(4));
    } else if (line.trim() !== "" || !current) current = undefined;
  }
  return blocks;
}

/** The section's fenced blocks, each with its language (```yaml → "yaml") and its text. */
export function readmeFences(title: string): { lang: string; body: string }[] {
  return [...readmeSection(title).matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map((m) => ({ lang: m[1]!, body: m[2]! }));
}
