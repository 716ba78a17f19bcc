// The body of one VerifyPool worker thread: verifies packed chunks with the backend the pool
// chose and transfers the verdicts back. It holds no state beyond the backend (and, for
// node:crypto, that backend's KeyObject cache, which is per isolate).

import { parentPort, workerData } from "node:worker_threads";
import {
  type VerifyWorkerData,
  type VerifyWorkerRequest,
  type VerifyWorkerResponse,
  createEd25519VerifyBackend,
  verifyPackedItems,
} from "./verify-pool.js";

const port = parentPort;
if (port === null) throw new Error("verify-worker.js runs only as a VerifyPool worker thread");
const backend = createEd25519VerifyBackend((workerData as VerifyWorkerData).backend);

port.on("message", (request: VerifyWorkerRequest) => {
  if (request.type === "crash") throw new Error("crash requested by VerifyPool.crashWorkerForTesting");
  const results = verifyPackedItems(backend, request.packed);
  const response: VerifyWorkerResponse = { type: "results", jobId: request.jobId, results };
  // verifyPackedItems allocates the verdicts in a fresh ArrayBuffer, never a shared one.
  port.postMessage(response, [results.buffer as ArrayBuffer]);
});
