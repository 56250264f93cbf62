// The dashboard's pages fill themselves from /api/... and refresh every
// second while visible. Text from the cluster (names, error messages, log
// lines) is only ever set as text, never parsed as HTML.
"use strict";

const POLL_MS = 1000;
const PAGE_ROWS = 50;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : String(c ?? ""));
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

async function api(path) {
  const reply = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (reply.status === 401) {
    window.location.href = "/login";
    throw new Error("not logged in");
  }
  const body = await reply.json();
  if (!reply.ok) throw new Error(body.error || `${reply.status}`);
  return body;
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function time(ms) {
  return ms ? new Date(ms).toLocaleTimeString() : "";
}

// A table of `rows` with `columns`: [heading, row => cell text or node, class].
function table(id, columns, rows, empty = "none") {
  const t = document.getElementById(id);
  const head = el("tr", {}, ...columns.map(([h]) => el("th", {}, h)));
  const body = rows.length
    ? rows.map((r) => el("tr", {}, ...columns.map(([, f, cls]) => el("td", cls ? { class: cls } : {}, f(r)))))
    : [el("tr", {}, el("td", { colspan: columns.length }, empty))];
  t.replaceChildren(head, ...body);
}

function counts(byState) {
  const box = document.getElementById("counts");
  const states = Object.keys(byState).sort();
  const total = states.reduce((n, s) => n + byState[s], 0);
  box.replaceChildren(
    el("div", { class: "count", "data-state": "total" }, el("b", {}, total), "total"),
    ...states.map((s) => el("div", { class: "count", "data-state": s }, el("b", {}, byState[s]), s)),
  );
}

function usage(used, total) {
  const pct = total > 0 ? Math.min(100, (100 * used) / total) : 0;
  const bar = el("div", { class: "bar", title: `${pct.toFixed(0)} %` }, el("span"));
  bar.firstChild.style.width = `${pct}%`;
  return el("div", {}, bar, `${bytes(used)} of ${bytes(total)}`);
}

function resources(r) {
  return Object.keys(r).sort().map((k) => {
    const { total, available } = r[k];
    const fmt = (v) => (k === "memory" ? bytes(v) : v);
    return `${k} ${fmt(total - available)}/${fmt(total)}`;
  }).join(", ");
}

function logsLink(id) {
  return el("a", { href: `/logs?id=${encodeURIComponent(id)}` }, "logs");
}

// Paging of a table: the offset, and "previous"/"next" buttons.
const pager = { offset: 0, total: 0 };
function drawPager() {
  const box = document.querySelector(".pager");
  if (!box) return;
  const last = Math.min(pager.offset + PAGE_ROWS, pager.total);
  const prev = el("button", {}, "Previous");
  const next = el("button", {}, "Next");
  prev.disabled = pager.offset === 0;
  next.disabled = last >= pager.total;
  prev.onclick = () => { pager.offset = Math.max(0, pager.offset - PAGE_ROWS); refresh(); };
  next.onclick = () => { pager.offset += PAGE_ROWS; refresh(); };
  box.replaceChildren(`${pager.total ? pager.offset + 1 : 0}–${last} of ${pager.total} `, prev, " ", next);
}
const page = () => `offset=${pager.offset}&limit=${PAGE_ROWS}`;

const taskColumns = [
  ["Task", (t) => t.task_id],
  ["Function", (t) => t.function],
  ["State", (t) => t.state],
  ["Attempt", (t) => t.attempt, "num"],
  ["Node", (t) => t.node_id],
  ["Ended", (t) => time(t.ended_at_ms)],
  ["Took", (t) => (t.ended_at_ms ? `${t.ended_at_ms - t.started_at_ms} ms` : ""), "num"],
  ["", (t) => (t.ended_at_ms ? logsLink(t.task_id) : "")],
];

const views = {
  async overview() {
    const o = await api("/api/overview");
    counts(o.tasks.by_state);
    table("nodes", [
      ["Node", (n) => n.node_id + (n.head ? " (head)" : "")],
      ["Address", (n) => n.address],
      ["State", (n) => n.state],
      ["Resources in use", (n) => resources(n.resources)],
      ["Object store", (n) => usage(n.store_used, n.store_capacity)],
      ["Running", (n) => n.running_tasks, "num"],
      ["Pending", (n) => n.pending_tasks, "num"],
    ], o.nodes);
  },

  async tasks() {
    const [all, failed] = await Promise.all([
      api(`/api/tasks?${page()}`),
      api("/api/tasks?state=failed&limit=20"),
    ]);
    counts(all.counts.by_state);
    table("failed", [
      ["Task", (t) => t.task_id],
      ["Function", (t) => t.function],
      ["Node", (t) => t.node_id],
      ["Error", (t) => t.error_code],
      ["Message", (t) => t.error_message, "error"],
      ["Ended", (t) => time(t.ended_at_ms)],
      ["", (t) => logsLink(t.task_id)],
    ], failed.rows, "no failed tasks");
    pager.total = all.total;
    table("tasks", taskColumns, all.rows);
  },

  async actors() {
    const r = await api(`/api/actors?${page()}`);
    pager.total = r.total;
    table("rows", [
      ["Actor", (a) => a.actor_id], ["Name", (a) => a.name], ["Class", (a) => a.class],
      ["State", (a) => a.state], ["Node", (a) => a.node_id], ["", (a) => logsLink(a.actor_id)],
    ], r.rows);
  },

  async objects() {
    const r = await api(`/api/objects?${page()}`);
    pager.total = r.total;
    table("rows", [
      ["Object", (o) => o.object_id], ["Size", (o) => bytes(o.size), "num"], ["State", (o) => o.state],
      ["Refs", (o) => o.refs, "num"], ["Node", (o) => o.node_id],
    ], r.rows);
  },

  async groups() {
    const r = await api(`/api/groups?${page()}`);
    pager.total = r.total;
    table("rows", [
      ["Group", (g) => g.placement_group_id], ["Bundle", (g) => g.bundle_index, "num"],
      ["Node", (g) => g.node_id],
      ["Resources", (g) => Object.entries(g.resources).map(([k, v]) => `${k} ${v}`).join(", ")],
    ], r.rows);
  },

  async jobs() {
    const r = await api(`/api/jobs?${page()}`);
    pager.total = r.total;
    table("rows", [
      ["Job", (j) => j.job_id], ["State", (j) => j.state], ["Driver", (j) => j.driver_address],
      ["Description", (j) => j.description], ["Node", (j) => j.node_id],
      ["Started", (j) => time(j.started_at_ms)], ["Ended", (j) => time(j.ended_at_ms)],
    ], r.rows);
  },

  async logs() {
    if (!logView.id) return;
    const r = await api(`/api/logs?id=${encodeURIComponent(logView.id)}&offset=${logView.offset}`);
    logView.next = r.next_offset;
    document.getElementById("log-newer").disabled = r.next_offset === logView.offset;
    document.getElementById("log-older").disabled = logView.back.length === 0;
    const skipped = r.skipped ? ` (${bytes(r.skipped)} before this were deleted by the node's log cap)` : "";
    document.getElementById("log-status").textContent =
      `${r.id} on node ${r.node_id}, bytes ${r.offset}–${r.next_offset}${r.eof ? ", end of log" : ""}${skipped}`;
    document.getElementById("log").replaceChildren(
      ...r.lines.map((l) => el("span", { class: l.stream }, l.text.endsWith("\n") ? l.text : `${l.text}\n`)),
    );
  },

  async timeline() {
    const trace = await api("/api/timeline");
    drawTimeline(document.getElementById("timeline"), trace.traceEvents);
  },
};

// The log on screen: its id, the page's offset and the offsets before it.
const logView = { id: "", offset: 0, next: 0, back: [] };
function setupLogs() {
  const form = document.getElementById("log-form");
  const input = document.getElementById("log-id");
  logView.id = new URLSearchParams(window.location.search).get("id") || "";
  input.value = logView.id;
  form.onsubmit = (e) => {
    e.preventDefault();
    Object.assign(logView, { id: input.value.trim(), offset: 0, next: 0, back: [] });
    history.replaceState(null, "", `/logs?id=${encodeURIComponent(logView.id)}`);
    refresh();
  };
  document.getElementById("log-newer").onclick = () => {
    logView.back.push(logView.offset);
    logView.offset = logView.next;
    refresh();
  };
  document.getElementById("log-older").onclick = () => {
    logView.offset = logView.back.pop() ?? 0;
    refresh();
  };
}

// One lane per (node, worker), one bar per finished task, time left to right.
function drawTimeline(box, events) {
  const names = new Map();
  for (const e of events.filter((e) => e.ph === "M")) {
    names.set(e.name === "process_name" ? `p${e.pid}` : `t${e.pid}.${e.tid}`, e.args.name);
  }
  const bars = events.filter((e) => e.ph === "X");
  if (!bars.length) {
    box.replaceChildren(el("p", {}, "No finished tasks yet."));
    return;
  }
  const lanes = [...new Set(bars.map((e) => `${e.pid}.${e.tid}`))].sort((a, b) => {
    const [pa, ta] = a.split(".").map(Number);
    const [pb, tb] = b.split(".").map(Number);
    return pa - pb || ta - tb;
  });
  const start = Math.min(...bars.map((e) => e.ts));
  const end = Math.max(...bars.map((e) => e.ts + e.dur));
  const label = 260, laneH = 22, width = Math.max(600, box.clientWidth || 900);
  const scale = (width - label - 10) / Math.max(1, end - start);
  const out = svg("svg", { width, height: lanes.length * laneH + 24, role: "img" });
  lanes.forEach((lane, i) => {
    const [pid, tid] = lane.split(".");
    const text = svg("text", { x: 4, y: i * laneH + 15 });
    text.textContent = `${names.get(`p${pid}`) ?? `node ${pid}`} · ${names.get(`t${pid}.${tid}`) ?? `worker ${tid}`}`;
    out.append(text);
  });
  for (const e of bars) {
    const i = lanes.indexOf(`${e.pid}.${e.tid}`);
    const rect = svg("rect", {
      class: e.args.state === "failed" ? "task failed" : "task",
      x: label + (e.ts - start) * scale, y: i * laneH + 4,
      width: Math.max(3, e.dur * scale), height: laneH - 8,
    });
    const title = svg("title");
    title.textContent = `${e.name} ${e.args.task_id} (${e.args.state}) ${(e.dur / 1000).toFixed(1)} ms`;
    rect.append(title);
    out.append(rect);
  }
  const axis = svg("text", { x: label, y: lanes.length * laneH + 18 });
  axis.textContent = `${new Date(start / 1000).toLocaleTimeString()} – ${new Date(end / 1000).toLocaleTimeString()} (${((end - start) / 1000).toFixed(0)} ms)`;
  out.append(axis);
  box.replaceChildren(out);
}

const name = document.body.dataset.page || "";
const view = views[name === "" ? "overview" : name];

async function refresh() {
  if (!view) return;
  const error = document.getElementById("error");
  try {
    await view();
    drawPager();
    error.hidden = true;
    document.getElementById("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    error.textContent = String(e.message || e);
    error.hidden = false;
  }
}

// One request at a time, none while the tab is hidden.
async function poll() {
  if (!document.hidden) await refresh();
  setTimeout(poll, POLL_MS);
}

if (name === "logs") setupLogs();
if (view) poll();
