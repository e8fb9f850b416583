import { MemoryStore } from "../../src/store/memory.ts";
import { storeContract } from "./contract.ts";

storeContract("memory", async () => ({ store: new MemoryStore() }));
