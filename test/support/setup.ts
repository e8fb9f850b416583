/** Preloaded by bun test (bunfig.toml): quiet logs unless CONVERGE_LOG_LEVEL asks for more. */
import { configureLogging, type Level } from "../../src/observability/log.ts";

configureLogging({ level: (process.env.CONVERGE_LOG_LEVEL as Level | undefined) ?? "error" });
