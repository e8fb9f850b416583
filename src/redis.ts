/** `converge/redis`: the Redis store (ioredis), shared by every process on every machine that reaches it. */
export { RedisStore, type RedisStoreOptions } from "./store/redis.ts";
