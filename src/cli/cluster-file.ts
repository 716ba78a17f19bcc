// Reading a cluster.json for any command. The reader lives with the format (ledger/cluster-json.ts),
// where the SDK uses it too; this re-export keeps the commands' imports short.

export { readClusterFile } from "../ledger/cluster-json.js";
