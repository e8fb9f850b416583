/**
 * Every error converge throws on purpose is a ConvergeError: its message is meant for the user,
 * and `exitCode` is what the CLI exits with when it reaches the top.
 */
export class ConvergeError extends Error {
  readonly exitCode: number = 1;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad configuration or bad arguments: the user must change something before retrying. */
export class ConfigError extends ConvergeError {
  override readonly exitCode = 2;
}

/** Bytes that are not a valid converge message or frame. */
export class DecodeError extends ConvergeError {}

/** A signature that does not verify, or a key that cannot sign. */
export class SignatureError extends ConvergeError {}

/** An identity file that is missing, unreadable, malformed or too open. */
export class IdentityError extends ConvergeError {}

/** A store that failed: unreachable, corrupt record, closed. */
export class StoreError extends ConvergeError {}

/** A record that does not parse (a damaged file, a stray write): `key` names it. */
export class CorruptRecordError extends StoreError {
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(message);
  }
}

/** A store used after `close()`: what was asked cannot happen, and nothing will change that. */
export class StoreClosedError extends StoreError {}

/** A transport that failed: unreachable peer, not started, oversized frame. */
export class TransportError extends ConvergeError {}

/** A receive that waited longer than its timeout; the runtime catches this one. */
export class TimeoutError extends ConvergeError {}

/** A task operation that is not allowed in the task's current state. */
export class TaskStateError extends ConvergeError {}

/**
 * The task, pool or agent asked for does not exist. The CLI exits 3 for it, so that a script can
 * tell "no such thing" from bad arguments (2) and other failures (1). A TaskStateError too, so
 * code that treated a missing task as a state error still does:
 *
 *   try { await show(id) } catch (err) { if (err instanceof NotFoundError) ... }
 */
export class NotFoundError extends TaskStateError {
  override readonly exitCode: number = 3;
}

/** A lease holder whose lease expired and whose task was claimed by someone else. */
export class LeaseLostError extends TaskStateError {}

/** A pool operation refused by admission or trust. */
export class PoolError extends ConvergeError {}

/**
 * Waiting for tasks to finish ran out of time (`TaskManager.waitFor`, `converge tasks wait`). The
 * CLI exits 124 for it, as timeout(1) does, so that a CI script can tell it from a failed task (1).
 */
export class WaitTimeoutError extends ConvergeError {
  override readonly exitCode = 124;
  /** The task waited for, and its state when time ran out (undefined: several, or never read). */
  readonly taskId: string | undefined;
  readonly state: string | undefined;
  constructor(message: string, options: { taskId?: string; state?: string; cause?: unknown } = {}) {
    super(message, options);
    this.taskId = options.taskId;
    this.state = options.state;
  }
}
