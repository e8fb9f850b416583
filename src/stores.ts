/**
 * `converge/stores`: the store a configuration names (`store_backend`, `store_path`, the legacy
 * `discovery_store`), as `converge run` opens it. It can open any backend, so it may load the drivers.
 */
export {
  openStore,
  isStoreConfigured,
  STORE_BACKENDS,
  type StoreBackend,
  type StoreConfig,
} from "./cli/store-config.ts";
