// Generates the TypeScript types of the node's gRPC API from ../../proto/reef.proto
// (the single source of truth) and copies the .proto beside the package, where the
// driver loads it at run time (@grpc/proto-loader). Run by `npm run build`.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const source = join(root, "..", "..", "proto", "reef.proto");
mkdirSync(join(root, "proto"), { recursive: true });
copyFileSync(source, join(root, "proto", "reef.proto"));
rmSync(join(root, "src", "gen"), { recursive: true, force: true });
const bin = join(root, "node_modules", ".bin", "proto-loader-gen-types");
const result = spawnSync(
  bin,
  [
    "--keepCase",
    "--longs=String",
    "--enums=String",
    "--defaults",
    "--oneofs",
    "--includeComments",
    "--importFileExtension=.js",
    "--grpcLib=@grpc/grpc-js",
    "--outDir=src/gen",
    "proto/reef.proto",
  ],
  { cwd: root, stdio: "inherit" },
);
if (result.status !== 0) {
  console.error(`proto-loader-gen-types failed (${result.error ?? `exit ${result.status}`})`);
  process.exit(1);
}
