import { describe, expect, test } from "bun:test";
import { ConfigError } from "../../src/core/errors.ts";
import { MAX_TASK_ID, newTask } from "../../src/core/task.ts";

describe("when a task is made with an id of its own", () => {
  test("an ordinary id is kept, and no id means a new UUID", () => {
    expect(newTask({ id: "resize-42" }).id).toBe("resize-42");
    expect(newTask({ id: "ünïcode/ok:1" }).id).toBe("ünïcode/ok:1");
    expect(newTask().id).toMatch(/^[0-9a-f-]{36}$/);
  });

  test("an empty id, an id with a line break or control character, or an over-long id is refused", () => {
    const cases: [string, RegExp][] = [
      ["", /^a task id must be a non-empty string$/],
      ["a\nb", /^a task id must not contain control characters, got "a\\nb"$/],
      ["a\u0000b", /control characters, got "a\\u0000b"/],
      ["a\u2028b", /control characters/],
      ["x".repeat(MAX_TASK_ID + 1), new RegExp(`at most ${MAX_TASK_ID} characters, got ${MAX_TASK_ID + 1}`)],
    ];
    for (const [id, message] of cases) {
      expect(() => newTask({ id })).toThrow(ConfigError);
      expect(() => newTask({ id })).toThrow(message);
    }
    expect(newTask({ id: "x".repeat(MAX_TASK_ID) }).id).toHaveLength(MAX_TASK_ID);
  });
});
