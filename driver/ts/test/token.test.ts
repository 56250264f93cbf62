// The cluster token: where it comes from, and that every RPC carries it as
// `authorization: Bearer <token>`. A small gRPC server speaking reef.v1.Node
// records the metadata it receives.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, test } from "node:test";

import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

import { ArgumentError, Cluster, ConnectionError, resolveToken } from "@reef/driver";

const proto = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "proto", "reef.proto");

/** Temporary directories, removed when the file's tests end. */
const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "reef-ts-token-"));
  dirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe("token sources", () => {
  const dir = tempDir();
  const file = join(dir, "token");
  writeFileSync(file, "from-file\n", { mode: 0o600 });
  const envFile = join(dir, "env-token");
  writeFileSync(envFile, "from-env-file", { mode: 0o600 });

  test("option token, option tokenFile, REEF_TOKEN, REEF_TOKEN_FILE, in that order", () => {
    const env = { REEF_TOKEN: "from-env", REEF_TOKEN_FILE: envFile };
    assert.equal(resolveToken({ token: "explicit", tokenFile: file }, env), "explicit");
    assert.equal(resolveToken({ tokenFile: file }, env), "from-file");
    assert.equal(resolveToken({}, env), "from-env");
    assert.equal(resolveToken({}, { REEF_TOKEN_FILE: envFile }), "from-env-file");
    assert.equal(resolveToken({}, {}), undefined);
  });

  test("unreadable or empty tokens are ArgumentErrors", () => {
    assert.throws(() => resolveToken({ tokenFile: join(dir, "missing") }, {}), ArgumentError);
    assert.throws(() => resolveToken({ token: "  " }, {}), /empty/);
    assert.throws(() => resolveToken({ token: "a\nb" }, {}), /cannot carry/);
  });
});

interface Seen {
  method: string;
  authorization: grpc.MetadataValue[];
}

/** A stand-in node that answers Hello, Put, RegisterModule and Status and records each call's metadata. */
async function fakeNode(requiredToken?: string): Promise<{ address: string; seen: Seen[]; ids: string[]; stop(): void }> {
  const definition = protoLoader.loadSync(proto, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const pkg = grpc.loadPackageDefinition(definition) as any;
  const seen: Seen[] = [];
  const ids: string[] = [];
  const server = new grpc.Server();
  const check = (method: string, metadata: grpc.Metadata): grpc.ServiceError | null => {
    const authorization = metadata.get("authorization");
    seen.push({ method, authorization });
    if (requiredToken !== undefined && authorization[0] !== `Bearer ${requiredToken}`) {
      return Object.assign(new Error("bad token"), {
        code: grpc.status.UNAUTHENTICATED,
        details: "bad token",
        metadata: new grpc.Metadata(),
      });
    }
    return null;
  };
  server.addService(pkg.reef.v1.Node.service, {
    RegisterModule: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const e = check("RegisterModule", call.metadata);
      if (e) return cb(e);
      cb(null, { error: { code: "INVALID_MODULE", message: "fake node", backtrace: "" } });
    },
    Status: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const e = check("Status", call.metadata);
      if (e) return cb(e);
      cb(null, {});
    },
    Stop: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, {}),
    Session: (call: grpc.ServerDuplexStream<any, any>) => {
      const e = check("Session", call.metadata);
      if (e) return void call.emit("error", e);
      call.write({
        replies: [
          {
            req_id: "0",
            hello: { node_id: "fake", id_prefix: "5", arena_path: "", arena_size: "0", inline_threshold: "1048576", socket_path: "" },
          },
        ],
      });
      call.on("data", (batch: { ops: any[] }) => {
        for (const op of batch.ops) {
          if (op.put) {
            ids.push(op.put.id);
            call.write({ replies: [{ req_id: op.put.req_id, ok: {} }] });
          }
        }
      });
      call.on("end", () => call.end());
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  return { address: `127.0.0.1:${port}`, seen, ids, stop: () => server.forceShutdown() };
}

describe("authorization metadata", () => {
  test("every RPC carries authorization: Bearer <token>; ids are prefix << 40 | counter", async () => {
    const node = await fakeNode("s3cret");
    try {
      const cluster = await Cluster.connect(node.address, { token: "s3cret" });
      const a = await cluster.put("a");
      const b = await cluster.put(new Uint8Array([1]));
      assert.equal(a.id, (5n << 40n) | 1n);
      assert.equal(b.id, (5n << 40n) | 2n);
      assert.deepEqual(node.ids, [String((5n << 40n) | 1n), String((5n << 40n) | 2n)]);
      await assert.rejects(cluster.register(new Uint8Array([0])), /fake node/);
      await cluster.status();
      await cluster.close();
      assert.deepEqual(
        node.seen.map((s) => s.method),
        ["Session", "RegisterModule", "Status"],
      );
      for (const s of node.seen) assert.deepEqual(s.authorization, ["Bearer s3cret"], s.method);
    } finally {
      node.stop();
    }
  });

  test("the token comes from REEF_TOKEN_FILE when no option is given", async () => {
    const node = await fakeNode("from-env-file");
    const dir = tempDir();
    writeFileSync(join(dir, "token"), "from-env-file\n", { mode: 0o600 });
    const saved = { ...process.env };
    try {
      delete process.env.REEF_TOKEN;
      process.env.REEF_TOKEN_FILE = join(dir, "token");
      const cluster = await Cluster.connect(node.address);
      await cluster.status();
      await cluster.close();
      assert.deepEqual(node.seen.map((s) => s.authorization[0]), ["Bearer from-env-file", "Bearer from-env-file"]);
    } finally {
      process.env = saved;
      node.stop();
    }
  });

  test("no token: no authorization header; a refused token is a typed error", async () => {
    const open = await fakeNode();
    try {
      const saved = { ...process.env };
      delete process.env.REEF_TOKEN;
      delete process.env.REEF_TOKEN_FILE;
      try {
        const cluster = await Cluster.connect(open.address);
        await cluster.status();
        await cluster.close();
      } finally {
        process.env = saved;
      }
      assert.deepEqual(open.seen.map((s) => s.authorization), [[], []]);
    } finally {
      open.stop();
    }
    const guarded = await fakeNode("right");
    try {
      await assert.rejects(Cluster.connect(guarded.address, { token: "wrong" }), (e: unknown) => {
        assert.ok(e instanceof ConnectionError, String(e));
        assert.equal(e.code, "UNAUTHENTICATED");
        return true;
      });
    } finally {
      guarded.stop();
    }
  });
});
