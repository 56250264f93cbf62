// The dashboard in a real browser: starts a head and a worker (target/release/host),
// runs a DAG with one failing task through the TypeScript driver, and drives headless
// Chromium (puppeteer-core) through the pages, asserting what a person sees. Saves
// screenshots under target/dashboard/ for review. Bounded: fails after TEST_TIMEOUT_MS.

import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";

import puppeteer from "puppeteer-core";

const TEST_TIMEOUT_MS = 120_000;
const repo = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const hostBinary = process.env.REEF_HOST ?? join(repo, "target", "release", "host");
const chromium = process.env.CHROMIUM ?? "/usr/bin/chromium";
const shots = join(repo, "target", "dashboard");
const FAILURE = "dashboard test: this task fails on purpose";

function need(path, how) {
  if (!existsSync(path)) {
    console.error(`dashboard test: ${path} is missing (${how})`);
    process.exit(1);
  }
}
need(hostBinary, "cargo build --release -p reef-host");
need(chromium, "scripts/install-deps.sh installs Debian's chromium; or set $CHROMIUM");
need(join(repo, "target", "guests", "dag.wasm"), "scripts/build-guests.sh");
need(join(repo, "driver", "ts", "dist", "index.js"), "cd driver/ts && npm ci && npm run build");
const { Cluster } = await import(join(repo, "driver", "ts", "dist", "index.js"));

function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

const children = [];
const dirs = [];

// `host start ARGS`, resolved once its stdout has shown every line in `until`.
function startNode(args, until) {
  const dataDir = mkdtempSync(join(tmpdir(), "reef-dashboard-"));
  dirs.push(dataDir);
  const child = spawn(hostBinary, ["start", "--stop-on-stdin-close", "--data-dir", dataDir,
    "--object-store-memory", "128MiB", "--metrics-port", "0", ...args], { stdio: ["pipe", "pipe", "pipe"] });
  children.push(child);
  let out = "";
  let err = "";
  child.stderr.on("data", (d) => { err = (err + d).slice(-4000); });
  return new Promise((ok, fail) => {
    child.stdout.on("data", (d) => {
      out += d;
      if (until.every((s) => out.includes(s))) ok({ child, dataDir, out });
    });
    child.once("exit", (code) => fail(new Error(`host start exited (${code}):\n${out}\n${err}`)));
  });
}

async function main() {
  const [port, workerPort, dashboardPort] = [await freePort(), await freePort(), await freePort()];
  const head = await startNode(["--head", "--port", String(port), "--num-cpus", "2",
    "--dashboard-port", String(dashboardPort)], ["listening on", "dashboard at"]);
  const tokenFile = join(head.dataDir, "token");
  const token = readFileSync(tokenFile, "utf8").trim();
  // A worker joins with the node credential; drivers and the dashboard take the tenant's token.
  await startNode(["--port", String(workerPort), "--address", `127.0.0.1:${port}`,
    "--token-file", join(head.dataDir, "node-token"), "--num-cpus", "2", "--resource", "worker=1"],
    ["listening on"]);
  const base = `http://127.0.0.1:${dashboardPort}`;
  assert.match(head.out, new RegExp(`dashboard at ${base}/`), "the head prints the dashboard URL");

  // Without credentials: 401, JSON for the API, the login page for a browser.
  let reply = await fetch(`${base}/api/overview`);
  assert.equal(reply.status, 401);
  assert.equal((await reply.json()).code, "UNAUTHENTICATED");
  reply = await fetch(`${base}/api/tasks`, { headers: { Authorization: "Bearer not-the-token" } });
  assert.equal(reply.status, 401);
  reply = await fetch(`${base}/tasks`);
  assert.equal(reply.status, 401);
  assert.match(await reply.text(), /Cluster token/);
  reply = await fetch(`${base}/api/overview`, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(reply.status, 200);

  const cluster = await Cluster.connect(`127.0.0.1:${port}`, { tokenFile });
  const dag = await cluster.registerFile(join(repo, "target", "guests", "dag.wasm"));
  const bad = await cluster.registerFile(join(repo, "target", "guests", "bad.wasm"));
  // A DAG: a range, its sum and squares, combined; beside it one task that fails
  // and one that writes to its log on the worker (the only node with `worker`).
  const runDag = async (n) => {
    const xs = cluster.task(dag, "make_range").arg(n).submit();
    const sum = cluster.task(dag, "sum").arg(xs).submit();
    const squares = cluster.task(dag, "square_sum").arg(xs).submit();
    const combined = cluster.task(dag, "combine").arg(squares).arg(sum).submit();
    return cluster.get(combined);
  };
  await runDag(1000);
  const failing = cluster.task(bad, "fail").arg(FAILURE).submit();
  await assert.rejects(cluster.get(failing), new RegExp(FAILURE));
  const printing = cluster.task(bad, "print").resource("worker", 1).submit();
  await cluster.get(printing);
  const printId = `0x${printing.id.toString(16)}`;

  mkdirSync(shots, { recursive: true });
  // Chromium refuses to run as root with its sandbox on (containers run tests as
  // root); the page only ever loads this test's own local dashboard.
  const browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1400, height: 900 });

    // Logging in through the form.
    await page.goto(`${base}/`);
    await page.waitForSelector("input[name=token]");
    await page.type("input[name=token]", token);
    await Promise.all([page.waitForNavigation(), page.click("main.login button")]);
    const cookies = await page.cookies();
    const session = cookies.find((c) => c.name === "reef_session");
    assert.ok(session && session.httpOnly && session.sameSite === "Strict", "an HttpOnly SameSite=Strict cookie");
    assert.notEqual(session.value, token, "the cookie is not the token");

    // Overview: both nodes listed.
    await page.waitForFunction(() => document.querySelectorAll("#nodes tr").length === 3, { timeout: 15_000 });
    const nodes = await page.$$eval("#nodes tr td:first-child", (tds) => tds.map((td) => td.textContent));
    assert.equal(nodes.length, 2, `two nodes listed: ${nodes}`);
    assert.ok(nodes.some((n) => n.includes("(head)")), `the head is marked: ${nodes}`);
    await page.screenshot({ path: join(shots, "overview.png"), fullPage: true });

    // Tasks: counts move between two polls, the failure is shown with its error.
    await page.goto(`${base}/tasks`);
    const finished = () => page.$eval('#counts [data-state="finished"] b', (b) => Number(b.textContent));
    await page.waitForSelector('#counts [data-state="finished"]', { timeout: 15_000 });
    const before = await finished();
    assert.ok(before >= 4, `finished tasks counted: ${before}`);
    await runDag(2000);
    await page.waitForFunction(
      (n) => Number(document.querySelector('#counts [data-state="finished"] b')?.textContent) >= n,
      { timeout: 15_000 }, before + 4);
    const after = await finished();
    assert.ok(after >= before + 4, `the finished count moved on: ${before} -> ${after}`);
    await page.waitForFunction((text) => document.querySelector("#failed")?.innerText.includes(text),
      { timeout: 15_000 }, FAILURE);
    const failedRow = await page.$eval("#failed", (t) => t.innerText);
    assert.match(failedRow, /GUEST_ERROR|fail/, failedRow);
    await page.screenshot({ path: join(shots, "tasks.png"), fullPage: true });

    // Logs: the print task's lines, from whichever node ran it.
    await page.goto(`${base}/logs?id=${printId}`);
    await page.waitForFunction(() => document.querySelector("#log")?.textContent.includes("hello stdout"),
      { timeout: 15_000 });

    // Timeline: one bar per finished task.
    await page.goto(`${base}/timeline`);
    await page.waitForFunction(() => document.querySelectorAll("#timeline svg rect").length >= 8, { timeout: 15_000 });
    const bars = await page.$$eval("#timeline svg rect", (rs) => rs.length);
    const failedBars = await page.$$eval("#timeline svg rect.failed", (rs) => rs.length);
    assert.ok(failedBars >= 1, "the failed task's bar is drawn");
    const lanes = await page.$$eval("#timeline svg text", (ts) => ts.map((t) => t.textContent));
    const laneNodes = new Set(lanes.filter((l) => l.startsWith("node ")).map((l) => l.split(" ")[1]));
    assert.equal(laneNodes.size, 2, `lanes of both nodes: ${lanes}`);
    await page.screenshot({ path: join(shots, "timeline.png"), fullPage: true });

    // Logging out ends the session: the API answers 401 again.
    await page.goto(`${base}/logout`);
    const status = await page.evaluate(async () => (await fetch("/api/overview")).status);
    assert.equal(status, 401);
    console.log(`dashboard test: ok (2 nodes, finished ${before} -> ${after}, ${bars} timeline bars; ` +
      `screenshots in ${shots})`);
  } finally {
    await browser.close();
    await cluster.close().catch(() => undefined);
  }
}

function cleanup() {
  for (const child of children) {
    child.stdin.end();
    child.kill("SIGTERM");
  }
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}

const timer = setTimeout(() => {
  console.error(`dashboard test: timed out after ${TEST_TIMEOUT_MS} ms`);
  cleanup();
  process.exit(1);
}, TEST_TIMEOUT_MS);
try {
  await main();
} catch (e) {
  console.error("dashboard test failed:", e);
  process.exitCode = 1;
} finally {
  clearTimeout(timer);
  cleanup();
}
