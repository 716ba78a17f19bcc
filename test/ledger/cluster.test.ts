import assert from "node:assert/strict";
import { describe, it } from "node:test";

import type { PbftConfig } from "../../src/consensus/pbft/index.js";
import { DEFAULT_PROTOCOL_PARAMETERS, certificateQuorum, replicaPublicKey } from "../../src/ledger/cluster.js";
import { ClusterConfigError, clusterConfigToJson, parseClusterConfig, parseClusterConfigJson } from "../../src/ledger/cluster-json.js";
import { Random } from "../../src/sim/random.js";
import { hex } from "../support/random-bytes.js";
import { clusterJson, keyPair, testCluster } from "./fixtures.js";

/** The problems a config is refused for; fails the test if it is accepted. */
function problemsOf(value: unknown): readonly string[] {
  try {
    parseClusterConfig(value);
  } catch (error) {
    assert.ok(error instanceof ClusterConfigError, `expected a ClusterConfigError, got ${String(error)}`);
    return error.problems;
  }
  assert.fail("the config was accepted");
}

function assertProblem(value: unknown, expected: RegExp): void {
  const problems = problemsOf(value);
  assert.ok(
    problems.some((problem) => expected.test(problem)),
    `no problem matches ${expected}; got:\n${problems.join("\n")}`,
  );
}

describe("cluster config", () => {
  it("parses what init writes, sorted by id, with default protocol parameters when they are left out", () => {
    const { json, keys, authority } = clusterJson(4);
    (json.replicas as unknown[]).reverse();
    const config = parseClusterConfig(json);
    assert.equal(config.n, 4);
    assert.equal(config.f, 1);
    assert.deepEqual(config.replicas.map((replica) => replica.id), [0, 1, 2, 3]);
    assert.deepEqual(config.replicas[2]?.publicKey, keys[2]?.publicKey);
    assert.deepEqual(config.genesisAuthority, authority.publicKey);
    assert.deepEqual(config.protocol, DEFAULT_PROTOCOL_PARAMETERS);
    assert.equal(certificateQuorum(config), 3);
    assert.equal(replicaPublicKey(config, 4), undefined);
    assert.equal(replicaPublicKey(config, -1), undefined);
    assert.equal(replicaPublicKey(config, 0.5), undefined);
  });

  it("round-trips through its JSON text for n = 4 and n = 7", () => {
    for (const n of [4, 7]) {
      const { config } = testCluster(n);
      const text = clusterConfigToJson(config);
      assert.deepEqual(parseClusterConfigJson(text), config);
      assert.match(text, /"publicKey": "[0-9a-f]{64}"/);
    }
  });

  it("gives the protocol parameters to the PBFT core under the core's own names", () => {
    const { config } = testCluster(7);
    const { tickMs: _tickMs, ...coreParameters } = config.protocol;
    // Compile-time check: renaming a PbftConfig field without this file breaks the build.
    const pbft: PbftConfig = { n: config.n, ...coreParameters };
    assert.equal(pbft.n, 7);
    assert.equal(pbft.checkpointInterval, DEFAULT_PROTOCOL_PARAMETERS.checkpointInterval);
  });

  it("says how many replicas f needs: '4 replicas tolerate f = 1; got 3 replicas'", () => {
    const { json } = clusterJson(4);
    json.replicas = (json.replicas as unknown[]).slice(0, 3);
    json.n = 3;
    assertProblem(json, /^replicas: 4 replicas tolerate f = 1; got 3 replicas$/);
    assertProblem(json, /^n: must be an integer from 4 to 1024; got 3$/);
  });

  it("refuses n and f that disagree with each other or with the list", () => {
    const { json } = clusterJson(7);
    json.f = 1;
    assertProblem(json, /^replicas: 4 replicas tolerate f = 1; got 7 replicas$/);
    assertProblem(json, /^f: 7 replicas tolerate f = 2, and PBFT needs n = 3f \+ 1 exactly; got n = 7, f = 1$/);
    const { json: other } = clusterJson(4);
    other.n = 7;
    assertProblem(other, /^n: is 7 but 4 replicas are listed/);
  });

  it("refuses a key used by two replicas, naming both", () => {
    const { json } = clusterJson(4);
    const replicas = json.replicas as Array<Record<string, unknown>>;
    (replicas[3] as Record<string, unknown>).publicKey = (replicas[1] as Record<string, unknown>).publicKey;
    assertProblem(json, /^replicas\[3\]\.publicKey: the same key as replicas\[1\]; every replica needs its own key pair$/);
  });

  it("refuses a genesis authority that is also a replica's key", () => {
    const { json } = clusterJson(4);
    json.genesisAuthority = ((json.replicas as Array<Record<string, unknown>>)[2] as Record<string, unknown>).publicKey;
    assertProblem(json, /^genesisAuthority: is the public key of replica 2; give the minting authority its own key pair/);
  });

  it("says what is wrong with a bad hex key: length, non-hex digit, unusable point", () => {
    const { json } = clusterJson(4);
    const replicas = json.replicas as Array<Record<string, unknown>>;
    const key = replicas[0]?.publicKey as string;
    (replicas[0] as Record<string, unknown>).publicKey = key.slice(1);
    (replicas[1] as Record<string, unknown>).publicKey = `${key.slice(0, 10)}g${key.slice(11)}`;
    (replicas[2] as Record<string, unknown>).publicKey = "00".repeat(32);
    (replicas[3] as Record<string, unknown>).publicKey = 42;
    const problems = problemsOf(json);
    assert.ok(problems.includes("replicas[0].publicKey: must be 64 hex characters (a 32-byte Ed25519 public key); got 63 characters"));
    assert.ok(problems.includes('replicas[1].publicKey: "g" at position 10 is not a hex digit (0-9, a-f)'));
    assert.ok(problems.some((problem) => problem.startsWith("replicas[2].publicKey: the Ed25519 public key is a point of small order")));
    assert.ok(problems.some((problem) => problem.startsWith("replicas[3].publicKey: must be a string of 64 hex characters")));
    assert.equal(problems.length, 4, problems.join("\n"));
  });

  it("refuses duplicate and out-of-range replica ids and duplicate addresses", () => {
    const { json } = clusterJson(4);
    const replicas = json.replicas as Array<Record<string, unknown>>;
    (replicas[2] as Record<string, unknown>).id = 1;
    (replicas[3] as Record<string, unknown>).id = 9;
    (replicas[1] as Record<string, unknown>).address = "127.0.0.1:7000";
    assertProblem(json, /^replicas\[2\]\.id: 1 is also the id of replicas\[1\]/);
    assertProblem(json, /^replicas: id 9 is out of range; with 4 replicas the ids are 0 to 3, each once$/);
    assertProblem(json, /^replicas\[1\]\.address: 127\.0\.0\.1:7000 is also the address of replicas\[0\]$/);
  });

  it("accepts host:port addresses with names, IPv4 and bracketed IPv6, and refuses others", () => {
    const { json } = clusterJson(4);
    const replicas = json.replicas as Array<Record<string, unknown>>;
    const good = ["replica-0.example.com:7000", "10.0.0.2:1", "[::1]:65535", "localhost:7003"];
    good.forEach((address, index) => ((replicas[index] as Record<string, unknown>).address = address));
    assert.deepEqual(parseClusterConfig(json).replicas.map((replica) => replica.address), good);
    for (const address of ["127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", ":7000", "::1:7000", "host:07000", "a b:1"]) {
      (replicas[0] as Record<string, unknown>).address = address;
      assertProblem(json, /^replicas\[0\]\.address: must be "host:port"/);
    }
  });

  it("refuses a clusterId outside the pattern, a missing or future version, and unknown fields", () => {
    const { json } = clusterJson(4);
    json.clusterId = "has space";
    delete json.version;
    json.replicaCount = 4;
    assertProblem(json, /^clusterId: must be 1 to 64 letters, digits/);
    assertProblem(json, /^version: missing; this build reads "version": 1$/);
    assertProblem(json, /^replicaCount: unknown field; the known fields are version, clusterId/);
    json.version = 2;
    assertProblem(json, /^version: this build reads version 1; got 2$/);
    json.clusterId = "x".repeat(65);
    assertProblem(json, /^clusterId:/);
  });

  it("checks protocol parameters: misspelt names, ranges, L a multiple of K, max timeout not below the timeout", () => {
    const { json } = clusterJson(4);
    json.protocol = { checkpointIntervall: 100, watermarkWindow: 500, viewChangeTimeoutTicks: 100, viewChangeTimeoutMaxTicks: 50, maxBatchSize: 0 };
    assertProblem(json, /^protocol\.checkpointIntervall: unknown field/);
    assertProblem(json, /^protocol\.maxBatchSize: must be an integer from 1 to 65536; got 0$/);
    json.protocol = { watermarkWindow: 500, viewChangeTimeoutTicks: 100, viewChangeTimeoutMaxTicks: 50, batchDelayTicks: 0 };
    assertProblem(json, /^protocol\.watermarkWindow: must be a multiple of checkpointInterval \(128\); got 500, try 512$/);
    assertProblem(json, /^protocol\.viewChangeTimeoutMaxTicks: must be at least viewChangeTimeoutTicks \(100\); got 50$/);
    json.protocol = { batchDelayTicks: 0, tickMs: 5 };
    const config = parseClusterConfig(json);
    assert.equal(config.protocol.batchDelayTicks, 0);
    assert.equal(config.protocol.tickMs, 5);
  });

  it("lists every problem in one error whose message names the source", () => {
    const { json } = clusterJson(4);
    json.f = "one";
    json.genesisAuthority = "zz";
    assert.throws(
      () => parseClusterConfigJson(JSON.stringify(json), "cluster.json"),
      (error: unknown) =>
        error instanceof ClusterConfigError &&
        error.problems.length === 2 &&
        error.message.startsWith("cluster.json has 2 problems:\n  - f: must be an integer from 1 to 341; got \"one\""),
    );
  });

  it("refuses text that is not JSON, and values that are not objects, without throwing anything else", () => {
    assert.throws(() => parseClusterConfigJson("{", "cluster.json"), (error: unknown) => error instanceof ClusterConfigError && /not valid JSON/.test(error.message));
    for (const value of [null, 42, "text", [], undefined, 10n, { replicas: "many" }, { replicas: [null, 3, []] }, { protocol: [] }]) {
      assert.ok(problemsOf(value).length > 0);
    }
  });

  it("refuses to write a config assembled by hand that breaks a rule", () => {
    const { config } = testCluster(4);
    const random = new Random(5);
    const stranger = keyPair(random);
    const broken = { ...config, replicas: config.replicas.slice(0, 3).concat([{ id: 3, address: "127.0.0.1:7003", publicKey: config.replicas[0]!.publicKey }]) };
    assert.throws(() => clusterConfigToJson(broken), ClusterConfigError);
    const fine = { ...config, genesisAuthority: stranger.publicKey };
    assert.match(clusterConfigToJson(fine), new RegExp(hex(stranger.publicKey)));
  });
});
