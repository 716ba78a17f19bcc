// The JSON form of the cluster config (`cluster.json`) and its validating reader. The file is
// written by `bulwark init` but may be edited by hand (addresses for a multi-machine deployment,
// protocol tuning), so the reader checks every rule, collects every problem rather than stopping
// at the first, and says for each what to fix:
//
//   cluster config has 2 problems:
//     - replicas: 4 replicas tolerate f = 1; got 3 replicas
//     - replicas[2].publicKey: must be 64 hex characters (a 32-byte Ed25519 key); got 63
//
// Fields the reader does not know are problems too: a misspelt protocol parameter would otherwise
// be silently replaced by its default.

import { readFileSync } from "node:fs";

import {
  describePublicKeyProblem,
  ed25519PublicKeyProblem,
  ED25519_PUBLIC_KEY_BYTES,
} from "../crypto/ed25519.js";
import { BLOCK_TRANSACTIONS_MAX } from "./block-header.js";
import {
  CLUSTER_CONFIG_VERSION,
  CLUSTER_ID_PATTERN,
  CLUSTER_REPLICAS_MAX,
  type ClusterConfig,
  type ClusterReplica,
  DEFAULT_PROTOCOL_PARAMETERS,
  type ProtocolParameters,
} from "./cluster.js";
import { bytesEqual, toHex } from "./codec.js";

/** A config that breaks the rules; `problems` has one line per problem, each naming its field. */
export class ClusterConfigError extends Error {
  override readonly name = "ClusterConfigError";

  constructor(
    readonly problems: readonly string[],
    source = "cluster config",
  ) {
    const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
    super(`${source} has ${count}:\n${problems.map((problem) => `  - ${problem}`).join("\n")}`);
  }
}

/** The validated config in the file at `path`; any problem, reading included, is one ClusterConfigError naming the file. */
export function readClusterFile(path: string): ClusterConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new ClusterConfigError([`cannot be read: ${error instanceof Error ? error.message : String(error)}`], path);
  }
  return parseClusterConfigJson(text, path);
}

/**
 * A validated config from the text of a `cluster.json`. `source` (a file name) goes into the
 * error message. Throws `ClusterConfigError`.
 */
export function parseClusterConfigJson(text: string, source = "cluster config"): ClusterConfig {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ClusterConfigError([`not valid JSON (${(error as Error).message})`], source);
  }
  return parseClusterConfig(value, source);
}

/** A validated config from a parsed JSON value. Throws `ClusterConfigError` listing every problem. */
export function parseClusterConfig(value: unknown, source = "cluster config"): ClusterConfig {
  const problems: string[] = [];
  const config = readConfig(value, problems);
  if (config === undefined || problems.length > 0) throw new ClusterConfigError(problems, source);
  return config;
}

/** The JSON value of a config: keys as lowercase hex, fields in a fixed order. */
export function clusterConfigToJsonValue(config: ClusterConfig): Record<string, unknown> {
  return {
    version: config.version,
    clusterId: config.clusterId,
    n: config.n,
    f: config.f,
    genesisAuthority: toHex(config.genesisAuthority),
    replicas: config.replicas.map((replica) => ({
      id: replica.id,
      address: replica.address,
      publicKey: toHex(replica.publicKey),
    })),
    protocol: { ...config.protocol },
  };
}

/**
 * The text of `cluster.json`. The output is parsed back before it is returned, so a config
 * assembled by hand that breaks a rule is refused here (`ClusterConfigError`) rather than written
 * to a file no replica would accept.
 */
export function clusterConfigToJson(config: ClusterConfig): string {
  const text = `${JSON.stringify(clusterConfigToJsonValue(config), null, 2)}\n`;
  parseClusterConfig(JSON.parse(text) as unknown);
  return text;
}

// ---------------------------------------------------------------------------------------------
// Reading

const TOP_LEVEL_FIELDS = ["version", "clusterId", "n", "f", "genesisAuthority", "replicas", "protocol"] as const;
const REPLICA_FIELDS = ["id", "address", "publicKey"] as const;
const PROTOCOL_FIELDS = Object.keys(DEFAULT_PROTOCOL_PARAMETERS) as Array<keyof ProtocolParameters>;
/** batchDelayTicks may be 0 (propose at once); every other parameter is at least 1. */
const PROTOCOL_FIELDS_ALLOWING_ZERO: ReadonlySet<keyof ProtocolParameters> = new Set(["batchDelayTicks"]);

function readConfig(value: unknown, problems: string[]): ClusterConfig | undefined {
  if (!isPlainObject(value)) {
    problems.push(`must be a JSON object with the fields ${TOP_LEVEL_FIELDS.join(", ")}; got ${describeJson(value)}`);
    return undefined;
  }
  reportUnknownFields(value, TOP_LEVEL_FIELDS, "", problems);

  if (!("version" in value)) {
    problems.push(`version: missing; this build reads "version": ${CLUSTER_CONFIG_VERSION}`);
  } else if (value.version !== CLUSTER_CONFIG_VERSION) {
    problems.push(`version: this build reads version ${CLUSTER_CONFIG_VERSION}; got ${describeJson(value.version)}`);
  }

  const clusterId = value.clusterId;
  if (typeof clusterId !== "string" || !CLUSTER_ID_PATTERN.test(clusterId)) {
    problems.push(
      `clusterId: must be 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit; got ${describeJson(clusterId)}`,
    );
  }

  const f = readInteger(value, "f", "", 1, Math.floor((CLUSTER_REPLICAS_MAX - 1) / 3), problems);
  const n = readInteger(value, "n", "", 4, CLUSTER_REPLICAS_MAX, problems);
  const replicas = readReplicas(value.replicas, problems);
  if (replicas !== undefined) {
    if (f !== undefined && replicas.length !== 3 * f + 1) {
      problems.push(`replicas: ${3 * f + 1} replicas tolerate f = ${f}; got ${replicas.length} replicas`);
    }
    if (n !== undefined && replicas.length !== n) {
      problems.push(`n: is ${n} but ${replicas.length} replicas are listed; n must be the number of replicas`);
    }
  }
  if (n !== undefined && f !== undefined && n !== 3 * f + 1) {
    problems.push(`f: ${n} replicas tolerate f = ${Math.floor((n - 1) / 3)}, and PBFT needs n = 3f + 1 exactly; got n = ${n}, f = ${f}`);
  }

  const genesisAuthority = readPublicKey(value.genesisAuthority, "genesisAuthority", problems);
  if (genesisAuthority !== undefined && replicas !== undefined) {
    const holder = replicas.find((replica) => replica.publicKey !== undefined && bytesEqual(replica.publicKey, genesisAuthority));
    if (holder !== undefined) {
      problems.push(
        `genesisAuthority: is the public key of replica ${holder.id}; give the minting authority its own key pair, so a replica's key file cannot mint`,
      );
    }
  }

  const protocol = readProtocol(value.protocol, problems);

  if (problems.length > 0 || replicas === undefined || genesisAuthority === undefined || protocol === undefined) {
    return undefined;
  }
  const sorted = [...replicas].sort((left, right) => (left.id as number) - (right.id as number));
  return {
    version: CLUSTER_CONFIG_VERSION,
    clusterId: clusterId as string,
    n: n as number,
    f: f as number,
    replicas: sorted.map((replica) => ({ ...(replica as ClusterReplica) })),
    genesisAuthority,
    protocol,
  };
}

type PartialReplica = { id: number | undefined; address: string | undefined; publicKey: Uint8Array | undefined };

function readReplicas(value: unknown, problems: string[]): PartialReplica[] | undefined {
  if (!Array.isArray(value)) {
    problems.push(`replicas: must be a list of {"id", "address", "publicKey"} objects; got ${describeJson(value)}`);
    return undefined;
  }
  if (value.length > CLUSTER_REPLICAS_MAX) {
    problems.push(`replicas: at most ${CLUSTER_REPLICAS_MAX} replicas are supported; got ${value.length}`);
    return undefined;
  }
  const replicas = (value as unknown[]).map((entry, index) => readReplica(entry, `replicas[${index}]`, problems));

  // Each id, key and address once, with a message naming both holders of a duplicate.
  const firstWithId = new Map<number, number>();
  const firstWithKey = new Map<string, number>();
  const firstWithAddress = new Map<string, number>();
  replicas.forEach((replica, index) => {
    const path = `replicas[${index}]`;
    if (replica.id !== undefined) {
      const other = firstWithId.get(replica.id);
      if (other !== undefined) problems.push(`${path}.id: ${replica.id} is also the id of replicas[${other}]; ids must be 0 to n - 1, each once`);
      else firstWithId.set(replica.id, index);
    }
    if (replica.publicKey !== undefined) {
      const key = toHex(replica.publicKey);
      const other = firstWithKey.get(key);
      if (other !== undefined) problems.push(`${path}.publicKey: the same key as replicas[${other}]; every replica needs its own key pair`);
      else firstWithKey.set(key, index);
    }
    if (replica.address !== undefined) {
      const address = replica.address.toLowerCase();
      const other = firstWithAddress.get(address);
      if (other !== undefined) problems.push(`${path}.address: ${replica.address} is also the address of replicas[${other}]`);
      else firstWithAddress.set(address, index);
    }
  });
  const idsOutOfRange = replicas.filter((replica) => replica.id !== undefined && replica.id >= replicas.length);
  for (const replica of idsOutOfRange) {
    problems.push(`replicas: id ${replica.id} is out of range; with ${replicas.length} replicas the ids are 0 to ${replicas.length - 1}, each once`);
  }
  return replicas;
}

function readReplica(value: unknown, path: string, problems: string[]): PartialReplica {
  if (!isPlainObject(value)) {
    problems.push(`${path}: must be an object {"id", "address", "publicKey"}; got ${describeJson(value)}`);
    return { id: undefined, address: undefined, publicKey: undefined };
  }
  reportUnknownFields(value, REPLICA_FIELDS, `${path}.`, problems);
  const id = readInteger(value, "id", `${path}.`, 0, CLUSTER_REPLICAS_MAX - 1, problems);
  const address = value.address;
  let checkedAddress: string | undefined;
  if (typeof address !== "string" || !isHostPort(address)) {
    problems.push(`${path}.address: must be "host:port" with a port from 1 to 65535 (an IPv6 host in brackets, "[::1]:7000"); got ${describeJson(address)}`);
  } else {
    checkedAddress = address;
  }
  const publicKey = readPublicKey(value.publicKey, `${path}.publicKey`, problems);
  return { id, address: checkedAddress, publicKey };
}

function readProtocol(value: unknown, problems: string[]): ProtocolParameters | undefined {
  if (value === undefined) return { ...DEFAULT_PROTOCOL_PARAMETERS };
  if (!isPlainObject(value)) {
    problems.push(`protocol: must be an object of protocol parameters (or left out for the defaults); got ${describeJson(value)}`);
    return undefined;
  }
  reportUnknownFields(value, PROTOCOL_FIELDS, "protocol.", problems);
  const parameters: Record<string, number> = {};
  let complete = true;
  for (const field of PROTOCOL_FIELDS) {
    if (!(field in value)) {
      parameters[field] = DEFAULT_PROTOCOL_PARAMETERS[field];
      continue;
    }
    const minimum = PROTOCOL_FIELDS_ALLOWING_ZERO.has(field) ? 0 : 1;
    const maximum = field === "maxBatchSize" ? BLOCK_TRANSACTIONS_MAX : Number.MAX_SAFE_INTEGER;
    const parameter = readInteger(value, field, "protocol.", minimum, maximum, problems);
    if (parameter === undefined) complete = false;
    else parameters[field] = parameter;
  }
  if (!complete) return undefined;
  const protocol = parameters as unknown as ProtocolParameters;
  // Seed 003 and DESIGN.md ("Watermarks"): L is a multiple of the checkpoint interval, so the
  // window always ends on a checkpoint and a stable checkpoint always moves it forward.
  if (protocol.watermarkWindow % protocol.checkpointInterval !== 0) {
    const suggestion = Math.max(1, Math.round(protocol.watermarkWindow / protocol.checkpointInterval)) * protocol.checkpointInterval;
    problems.push(
      `protocol.watermarkWindow: must be a multiple of checkpointInterval (${protocol.checkpointInterval}); got ${protocol.watermarkWindow}, try ${suggestion}`,
    );
  }
  if (protocol.viewChangeTimeoutMaxTicks < protocol.viewChangeTimeoutTicks) {
    problems.push(
      `protocol.viewChangeTimeoutMaxTicks: must be at least viewChangeTimeoutTicks (${protocol.viewChangeTimeoutTicks}); got ${protocol.viewChangeTimeoutMaxTicks}`,
    );
  }
  return protocol;
}

function readInteger(
  object: Record<string, unknown>,
  field: string,
  pathPrefix: string,
  minimum: number,
  maximum: number,
  problems: string[],
): number | undefined {
  const value = object[field];
  if (value === undefined) {
    problems.push(`${pathPrefix}${field}: missing; expected an integer from ${minimum} to ${describeBound(maximum)}`);
    return undefined;
  }
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < minimum || value > maximum) {
    problems.push(`${pathPrefix}${field}: must be an integer from ${minimum} to ${describeBound(maximum)}; got ${describeJson(value)}`);
    return undefined;
  }
  return value;
}

function readPublicKey(value: unknown, path: string, problems: string[]): Uint8Array | undefined {
  const hexLength = 2 * ED25519_PUBLIC_KEY_BYTES;
  if (typeof value !== "string") {
    problems.push(`${path}: must be a string of ${hexLength} hex characters (a 32-byte Ed25519 public key); got ${describeJson(value)}`);
    return undefined;
  }
  if (value.length !== hexLength) {
    problems.push(`${path}: must be ${hexLength} hex characters (a 32-byte Ed25519 public key); got ${value.length} characters`);
    return undefined;
  }
  const badIndex = value.search(/[^0-9a-fA-F]/);
  if (badIndex !== -1) {
    problems.push(`${path}: ${JSON.stringify(value[badIndex])} at position ${badIndex} is not a hex digit (0-9, a-f)`);
    return undefined;
  }
  const key = Uint8Array.from(Buffer.from(value, "hex"));
  const problem = ed25519PublicKeyProblem(key);
  if (problem !== null) {
    problems.push(`${path}: ${describePublicKeyProblem(problem, key)}; generate a fresh key pair`);
    return undefined;
  }
  return key;
}

function reportUnknownFields(object: Record<string, unknown>, known: readonly string[], pathPrefix: string, problems: string[]): void {
  for (const field of Object.keys(object)) {
    if (!known.includes(field)) problems.push(`${pathPrefix}${field}: unknown field; the known fields are ${known.join(", ")}`);
  }
}

/** "host:port": a DNS name or IPv4 address, or an IPv6 address in brackets, and a port 1..65535. */
function isHostPort(address: string): boolean {
  const match = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?):([1-9][0-9]{0,4})$/.exec(address);
  return match !== null && Number(match[3]) <= 65535;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function describeJson(value: unknown): string {
  if (value === undefined) return "nothing";
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    // A value that did not come from JSON (a bigint, a cycle): its type is description enough.
  }
  text ??= `a ${typeof value}`;
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function describeBound(maximum: number): string {
  return maximum === Number.MAX_SAFE_INTEGER ? "2^53 - 1" : String(maximum);
}
