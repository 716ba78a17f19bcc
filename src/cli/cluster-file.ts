// Reading a cluster.json for any command: the file is read and validated (cluster-json.ts), and
// any problem becomes one ClusterConfigError whose message names the file and what to fix.

import { readFileSync } from "node:fs";

import { ClusterConfigError, parseClusterConfigJson } from "../ledger/cluster-json.js";
import type { ClusterConfig } from "../ledger/cluster.js";

/** The validated config in `path`; throws ClusterConfigError. */
export function readClusterFile(path: string): ClusterConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new ClusterConfigError([`cannot be read: ${error instanceof Error ? error.message : String(error)}`], path);
  }
  return parseClusterConfigJson(text, path);
}
