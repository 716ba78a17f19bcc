import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { main } from "../../src/cli/main.js";
import { parseClusterConfigJson } from "../../src/ledger/cluster-json.js";
import type { ClusterConfig } from "../../src/ledger/cluster.js";
import { DEFAULT_PROTOCOL_PARAMETERS } from "../../src/ledger/cluster.js";
import { readKeyFile } from "../../src/node/keys.js";
import { captureOutput } from "../support/cli-output.js";
import { temporaryDirectory } from "../storage/helpers.js";

async function init(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = captureOutput();
  const code = await main(["init", ...args], output);
  return { code, stdout: output.stdout, stderr: output.stderr };
}

function readCluster(directory: string): ClusterConfig {
  const path = join(directory, "cluster.json");
  return parseClusterConfigJson(readFileSync(path, "utf8"), path);
}

/** Every key file init wrote matches the config: replica i's key is replicas[i]'s, the client's is the genesis authority. */
async function assertKeysMatch(directory: string, cluster: ClusterConfig): Promise<void> {
  for (const replica of cluster.replicas) {
    const path = join(directory, `replica-${replica.id}.key`);
    const warnings: string[] = [];
    const key = await readKeyFile(path, { warn: (message) => warnings.push(message) });
    assert.equal(key.role, "replica");
    assert.equal(key.replica, replica.id);
    assert.deepEqual(key.publicKey, replica.publicKey);
    assert.deepEqual(warnings, [], "init writes protected key files");
    if (process.platform !== "win32") assert.equal(statSync(path).mode & 0o777, 0o600);
  }
  const client = await readKeyFile(join(directory, "client.key"));
  assert.equal(client.role, "client");
  assert.deepEqual(client.publicKey, cluster.genesisAuthority);
}

describe("bulwark init", () => {
  it("writes a 4-replica cluster by default: a config that parses with n = 4, f = 1, and keys that match it", async (t) => {
    const directory = join(temporaryDirectory(t, "bulwark-init-"), "nested", "cluster");
    const result = await init([directory]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, "");

    const cluster = readCluster(directory);
    assert.equal(cluster.clusterId, "bulwark-local");
    assert.equal(cluster.n, 4);
    assert.equal(cluster.f, 1);
    assert.deepEqual(
      cluster.replicas.map((replica) => replica.address),
      ["127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"],
    );
    assert.deepEqual(cluster.protocol, DEFAULT_PROTOCOL_PARAMETERS);
    await assertKeysMatch(directory, cluster);
    assert.deepEqual(readdirSync(directory).sort(), ["client.key", "cluster.json", "replica-0.key", "replica-1.key", "replica-2.key", "replica-3.key"]);

    assert.match(result.stdout, /Initialized cluster "bulwark-local" in .*: n = 4 replicas, tolerating f = 1 faulty replica\n/);
    assert.match(result.stdout, /cluster\.json +public config/);
    assert.match(result.stdout, /replica-3\.key +replica 3 at 127\.0\.0\.1:7003\n/);
    assert.match(result.stdout, /client\.key +default client; its key is the genesis authority/);
    assert.match(result.stdout, /\nNext: /);
  });

  it("writes 7 replicas (f = 2) at the host, ports and cluster id given", async (t) => {
    const directory = temporaryDirectory(t, "bulwark-init-");
    const result = await init([directory, "--replicas", "7", "--host", "::1", "--base-port", "9000", "--cluster-id", "staging"]);
    assert.equal(result.code, 0, result.stderr);
    const cluster = readCluster(directory);
    assert.equal(cluster.n, 7);
    assert.equal(cluster.f, 2);
    assert.equal(cluster.clusterId, "staging");
    assert.equal(cluster.replicas[0]?.address, "[::1]:9000");
    assert.equal(cluster.replicas[6]?.address, "[::1]:9006");
    await assertKeysMatch(directory, cluster);
    assert.match(result.stdout, /tolerating f = 2 faulty replicas/);
  });

  for (const replicas of [3, 5]) {
    it(`refuses ${replicas} replicas with a message saying n must be 3f + 1, and writes nothing`, async (t) => {
      const root = temporaryDirectory(t, "bulwark-init-");
      const directory = join(root, "cluster");
      const result = await init([directory, "--replicas", String(replicas)]);
      assert.equal(result.code, 2);
      assert.equal(
        result.stderr,
        `bulwark init: --replicas: 4 replicas tolerate f = 1; got ${replicas} replicas (n must be 3f + 1: 4, 7, 10, ...)\n`,
      );
      assert.equal(result.stdout, "");
      assert.equal(existsSync(directory), false, "the directory was created");
    });
  }

  it("names the largest valid cluster below a bad n", async (t) => {
    const directory = join(temporaryDirectory(t, "bulwark-init-"), "cluster");
    const result = await init([directory, "--replicas", "9"]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--replicas: 7 replicas tolerate f = 2; got 9 replicas/);
  });

  it("refuses ports beyond 65535, saying which base port fits", async (t) => {
    const directory = join(temporaryDirectory(t, "bulwark-init-"), "cluster");
    const overflow = await init([directory, "--base-port", "65533"]);
    assert.equal(overflow.code, 2);
    assert.match(overflow.stderr, /--base-port: replica 3 would listen on port 65536, above 65535; with 4 replicas use a base port of at most 65532/);
    assert.equal(existsSync(directory), false);

    const fits = await init([directory, "--base-port", "65532"]);
    assert.equal(fits.code, 0, fits.stderr);
    assert.equal(readCluster(directory).replicas[3]?.address, "127.0.0.1:65535");
  });

  it("refuses a bad host, cluster id or number, with exit code 2 and nothing written", async (t) => {
    const directory = join(temporaryDirectory(t, "bulwark-init-"), "cluster");
    const host = await init([directory, "--host", "example.com:80"]);
    assert.equal(host.code, 2);
    assert.match(host.stderr, /--host: must be a DNS name, an IPv4 address or an IPv6 address, without a port/);

    const clusterId = await init([directory, "--cluster-id", "-bad id"]);
    assert.equal(clusterId.code, 2);
    assert.match(clusterId.stderr, /--cluster-id: must be 1 to 64 letters/);

    const notANumber = await init([directory, "--replicas", "four"]);
    assert.equal(notANumber.code, 2);
    assert.match(notANumber.stderr, /--replicas <n>' argument 'four' is invalid\. expected a whole number/);

    const missingDirectory = await init([]);
    assert.equal(missingDirectory.code, 2);
    assert.match(missingDirectory.stderr, /missing required argument 'dir'/);
    assert.equal(existsSync(directory), false);
  });

  it("refuses a directory that already holds a cluster unless --force, and --force replaces every file", async (t) => {
    const directory = temporaryDirectory(t, "bulwark-init-");
    assert.equal((await init([directory])).code, 0);
    const before = readFileSync(join(directory, "cluster.json"), "utf8");
    const replicaKeyBefore = readFileSync(join(directory, "replica-0.key"), "utf8");

    const refused = await init([directory]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /cluster\.json, .*replica-0\.key, .*replica-1\.key and 3 more exist; delete them or use --force/);
    assert.equal(readFileSync(join(directory, "cluster.json"), "utf8"), before);
    assert.equal(readFileSync(join(directory, "replica-0.key"), "utf8"), replicaKeyBefore);

    const forced = await init([directory, "--force", "--cluster-id", "second"]);
    assert.equal(forced.code, 0, forced.stderr);
    const cluster = readCluster(directory);
    assert.equal(cluster.clusterId, "second");
    assert.notEqual(readFileSync(join(directory, "replica-0.key"), "utf8"), replicaKeyBefore, "--force made new keys");
    await assertKeysMatch(directory, cluster);
  });

  it("refuses to replace a stray key file without --force", async (t) => {
    const directory = temporaryDirectory(t, "bulwark-init-");
    writeFileSync(join(directory, "client.key"), "someone's key\n");
    const refused = await init([directory]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /client\.key exists; delete it or use --force/);
    assert.equal(existsSync(join(directory, "cluster.json")), false);
    assert.equal(readFileSync(join(directory, "client.key"), "utf8"), "someone's key\n");
  });

  it("exits 1 with the system's reason when the directory cannot be made", async (t) => {
    const file = join(temporaryDirectory(t, "bulwark-init-"), "not-a-directory");
    writeFileSync(file, "");
    const result = await init([join(file, "cluster")]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^bulwark init: ENOTDIR: not a directory, mkdir .*not-a-directory\/cluster'\n$/);
    assert.equal(result.stdout, "");
  });

  it("notes replica keys left from an earlier, larger cluster after --force", async (t) => {
    const directory = temporaryDirectory(t, "bulwark-init-");
    assert.equal((await init([directory, "--replicas", "7"])).code, 0);
    const smaller = await init([directory, "--force"]);
    assert.equal(smaller.code, 0, smaller.stderr);
    assert.match(smaller.stdout, /note: .*replica-6\.key is left from an earlier init and is not part of this cluster/);
    assert.equal(readCluster(directory).n, 4);
  });

  it("documents every option and its default in --help", async () => {
    const help = captureOutput();
    assert.equal(await main(["init", "--help"], help), 0);
    for (const expected of [
      /--replicas <n>.*\(default:\s+4\)/s,
      /--host <host>.*\(default:\s+"127\.0\.0\.1"\)/s,
      /--base-port <port>.*\(default:\s+7000\)/s,
      /--cluster-id <id>.*\(default:\s+"bulwark-local"\)/s,
      /--force/,
      /Exit code 0/,
    ]) {
      assert.match(help.stdout, expected);
    }
  });
});
