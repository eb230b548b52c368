// Spillway's page: live state, a streaming chat box, and charts from this
// server's own /v1/usage, /v1/models and /metrics. Everything the server or a
// model says is put on the page as text (textContent), never as markup. The
// API key, when the server wants one, is asked for and kept in memory only.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const POLL_MS = 2000;
let apiKey = null;
let history = [];       // the conversation: [{role, content}]
let busy = false;
let lastUsage = null;   // the latest /v1/usage (for tests and the tiles)

// ---- talking to the server --------------------------------------------------------

function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  if (apiKey) headers["Authorization"] = "Bearer " + apiKey;
  return fetch(path, Object.assign({}, opts, { headers, cache: "no-store" }));
}

async function getJSON(path) {
  const r = await api(path);
  if (r.status === 401) { askKey("The key was not accepted."); throw new Error("unauthorized"); }
  if (!r.ok) throw new Error(path + ": HTTP " + r.status);
  return r.json();
}

function askKey(msg) {
  apiKey = null;
  $("key-form").hidden = false;
  $("key-msg").textContent = msg || "";
  $("status").textContent = "waiting for the API key";
}

// ---- formatting -------------------------------------------------------------------

function fmtInt(n) { return Number(n || 0).toLocaleString("en-US"); }
function fmtUSD(x) {
  x = Number(x || 0);
  if (Math.abs(x) >= 100) return "$" + Math.round(x).toLocaleString("en-US");
  return "$" + (x !== 0 && Math.abs(x) < 0.01 ? x.toPrecision(2) : x.toFixed(2));
}
const pad = (n) => String(n).padStart(2, "0");
function fmtTime(t, bucket) { // local time, as the status line
  const d = new Date(t * 1000);
  if (bucket === "day") return pad(d.getMonth() + 1) + "-" + pad(d.getDate());
  if (bucket === "hour") return pad(d.getHours()) + "h";
  return pad(d.getHours()) + ":" + pad(d.getMinutes());
}

// ---- SVG charts (hand-written: bars, lines, horizontal bars) ----------------------

function el(tag, attrs, parent) {
  const e = document.createElementNS(SVG, tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (parent) parent.appendChild(e);
  return e;
}
function text(parent, x, y, s, anchor) {
  const t = el("text", { x, y, "text-anchor": anchor || "start" }, parent);
  t.textContent = s;
  return t;
}
function frame(svg) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const w = svg.clientWidth || 480, h = svg.clientHeight || 180;
  svg.setAttribute("viewBox", "0 0 " + w + " " + h);
  return { w, h, l: 56, r: 8, t: 8, b: 20 };
}
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}
function yAxis(svg, f, max, fmt) {
  for (let i = 0; i <= 2; i++) {
    const v = max * i / 2, y = f.h - f.b - (f.h - f.t - f.b) * i / 2;
    el("line", { x1: f.l, x2: f.w - f.r, y1: y, y2: y, class: "axis" }, svg);
    text(svg, f.l - 4, y + 3, fmt(v), "end");
  }
}
function xLabels(svg, f, xs, bucket) {
  const n = xs.length, step = Math.max(1, Math.ceil(n / 6)), bw = (f.w - f.l - f.r) / n;
  for (let i = 0; i < n; i += step) text(svg, f.l + bw * (i + 0.5), f.h - 6, fmtTime(xs[i], bucket), "middle");
}

// Stacked bars: series = [{cls, values[]}], one bar per x.
function stackedBars(svg, xs, series, bucket, fmt) {
  const f = frame(svg);
  let max = 0;
  xs.forEach((_, i) => { max = Math.max(max, series.reduce((s, se) => s + se.values[i], 0)); });
  max = niceMax(max);
  yAxis(svg, f, max, fmt || fmtInt);
  const bw = (f.w - f.l - f.r) / xs.length, ph = f.h - f.t - f.b;
  xs.forEach((x, i) => {
    let base = f.h - f.b;
    for (const se of series) {
      const v = se.values[i];
      if (!v) continue;
      const hgt = ph * v / max;
      const r = el("rect", { x: f.l + bw * i + bw * 0.1, y: base - hgt, width: Math.max(1, bw * 0.8),
                             height: hgt, class: se.cls }, svg);
      el("title", {}, r).textContent = fmtTime(x, bucket) + " " + se.name + ": " + (fmt || fmtInt)(v);
      base -= hgt;
    }
  });
  xLabels(svg, f, xs, bucket);
}

// Lines over the same xs: series = [{cls, values[]}].
function lines(svg, xs, series, bucket, fmt) {
  const f = frame(svg);
  const max = niceMax(Math.max(0, ...series.map((s) => Math.max(...s.values))));
  yAxis(svg, f, max, fmt);
  const bw = (f.w - f.l - f.r) / xs.length, ph = f.h - f.t - f.b;
  for (const se of series) {
    const pts = se.values.map((v, i) => (f.l + bw * (i + 0.5)).toFixed(1) + "," + (f.h - f.b - ph * v / max).toFixed(1));
    el("polyline", { points: pts.join(" "), class: se.cls }, svg);
  }
  xLabels(svg, f, xs, bucket);
}

// Horizontal bars: items = [{label, value, cls}].
function hbars(svg, items) {
  const f = frame(svg);
  if (!items.length) { text(svg, f.w / 2, f.h / 2, "no requests yet", "middle"); return; }
  const max = niceMax(Math.max(...items.map((i) => i.value)));
  const rowH = Math.min(22, (f.h - f.t) / items.length), left = 150;
  items.forEach((it, i) => {
    const y = f.t + rowH * i;
    text(svg, left - 6, y + rowH * 0.7, it.label, "end");
    const r = el("rect", { x: left, y: y + 2, height: rowH - 4, width: Math.max(1, (f.w - left - 40) * it.value / max), class: it.cls }, svg);
    el("title", {}, r).textContent = it.label + ": " + fmtInt(it.value);
    text(svg, left + (f.w - left - 40) * it.value / max + 4, y + rowH * 0.7, fmtInt(it.value));
  });
}

// ---- the data ---------------------------------------------------------------------

// The sparse points of a series as dense arrays over [start, end).
function densify(series) {
  const xs = [], byT = new Map(series.points.map((p) => [p.t, p]));
  for (let t = series.start; t < series.end; t += series.bucket_s) xs.push(t);
  const zero = { requests: {}, tokens: { local: {}, cloud: {}, reject: {} }, cost_usd: 0, savings_usd: 0 };
  return { xs, pts: xs.map((t) => byT.get(t) || zero) };
}

function drawUsage(u) {
  const s = u.series, b = s.bucket, d = densify(s);
  const req = (r) => d.pts.map((p) => p.requests[r] || 0);
  stackedBars($("chart-requests"), d.xs, [
    { name: "local", cls: "local-fill", values: req("local") },
    { name: "cloud", cls: "cloud-fill", values: req("cloud") },
    { name: "rejected", cls: "reject-fill", values: req("reject") }], b);
  const tok = (r) => d.pts.map((p) => (p.tokens[r].input || 0) + (p.tokens[r].output || 0));
  stackedBars($("chart-tokens"), d.xs, [
    { name: "local", cls: "local-fill", values: tok("local") },
    { name: "cloud", cls: "cloud-fill", values: tok("cloud") },
    { name: "rejected", cls: "reject-fill", values: tok("reject") }], b);
  const items = [];
  for (const route of ["local", "cloud", "reject"])
    for (const [reason, n] of Object.entries(u.reasons[route] || {}))
      items.push({ label: route + " · " + reason, value: n, cls: route + "-fill" });
  items.sort((a, c) => c.value - a.value);
  hbars($("chart-reasons"), items.slice(0, 8));
  let c = 0, v = 0;
  const cost = d.pts.map((p) => (c += p.cost_usd || 0)), save = d.pts.map((p) => (v += p.savings_usd || 0));
  lines($("chart-money"), d.xs, [{ cls: "cloud-line", values: cost }, { cls: "local-line", values: save }], b, fmtUSD);
}

// Cumulative savings (per day, since the first day with traffic) against the
// hardware cost, projected at the average daily rate until they meet.
function drawBreakeven(days) {
  const svg = $("chart-breakeven"), f = frame(svg), hw = Math.max(0, Number($("hw-cost").value) || 0);
  const pts = days.series.points;
  const first = pts.length ? pts[0].t : days.series.end - 86400;
  const nDays = Math.max(1, Math.round((days.series.end - first) / 86400));
  let acc = 0;
  const cum = [];
  for (let i = 0, j = 0; i < nDays; i++) {
    const t = first + i * 86400;
    while (j < pts.length && pts[j].t <= t) acc += pts[j++].savings_usd || 0;
    cum.push(acc);
  }
  const rate = acc / nDays; // USD per day
  const daysToEven = rate > 0 ? Math.ceil(hw / rate) : Infinity;
  const horizon = Math.max(nDays, Math.min(isFinite(daysToEven) ? daysToEven : nDays * 2, 3650));
  const max = niceMax(Math.max(hw, acc, rate * horizon));
  yAxis(svg, f, max, fmtUSD);
  const X = (i) => f.l + (f.w - f.l - f.r) * i / horizon, Y = (v) => f.h - f.b - (f.h - f.t - f.b) * v / max;
  el("line", { x1: f.l, x2: f.w - f.r, y1: Y(hw), y2: Y(hw), class: "hw-line" }, svg);
  el("polyline", { points: cum.map((v, i) => X(i + 1) + "," + Y(v)).join(" "), class: "local-line" }, svg);
  if (rate > 0) el("line", { x1: X(nDays), y1: Y(acc), x2: X(horizon), y2: Y(rate * horizon), class: "proj-line" }, svg);
  text(svg, f.l, f.h - 6, "day 1");
  text(svg, f.w - f.r, f.h - 6, "day " + horizon, "end");
  $("breakeven-text").textContent = rate > 0
    ? fmtUSD(acc) + " saved in " + nDays + " day(s), " + fmtUSD(rate) + "/day: " + fmtUSD(hw) +
      " of hardware pays for itself after " + (isFinite(daysToEven) ? fmtInt(daysToEven) : "∞") + " day(s)."
    : "No savings yet: they are priced at the cloud model's rate (or the policy's reference_price).";
}

function setTiles(u) {
  $("total-requests").textContent = fmtInt(u.requests.total);
  $("n-local").textContent = fmtInt(u.requests.local);
  $("n-cloud").textContent = fmtInt(u.requests.cloud);
  $("n-reject").textContent = fmtInt(u.requests.reject);
  $("cost").textContent = fmtUSD(u.cost_usd);
  $("savings").textContent = fmtUSD(u.savings_usd);
}

// A few gauges from the Prometheus text.
function metric(txt, name) {
  const m = txt.match(new RegExp("^" + name + " ([-0-9.e+]+)$", "m"));
  return m ? Number(m[1]) : null;
}
async function refreshLive() {
  const r = await api("/metrics");
  if (!r.ok) return;
  const t = await r.text();
  const q = metric(t, "spillway_requests_waiting"), run = metric(t, "spillway_requests_running");
  const kv = metric(t, "spillway_kv_usage_ratio"), tps = metric(t, "spillway_generation_tokens_per_second");
  $("queue").textContent = q === null ? "–" : fmtInt(q);
  $("running").textContent = run === null ? "–" : fmtInt(run);
  $("kv").textContent = kv === null ? "–" : (100 * kv).toFixed(1) + "%";
  $("tps").textContent = tps === null ? "–" : tps.toFixed(1);
}

let dayTick = 0, dayData = null;
async function refresh() {
  if (!$("key-form").hidden) return;
  try {
    const u = await getJSON("/v1/usage?bucket=" + $("bucket").value);
    lastUsage = u;
    setTiles(u);
    drawUsage(u);
    if (!dayData || dayTick++ % 15 === 0) dayData = await getJSON("/v1/usage?bucket=day&n=400");
    drawBreakeven(dayData);
    await refreshLive();
    $("status").textContent = "updated " + new Date().toLocaleTimeString();
    document.body.dataset.ready = "1";
  } catch (e) {
    if (e.message !== "unauthorized") $("status").textContent = String(e.message || e);
  }
}

// ---- chat -----------------------------------------------------------------------

function addMsg(role, content) {
  const d = document.createElement("div");
  d.className = "msg " + role;
  const meta = document.createElement("span");
  meta.className = "meta";
  const body = document.createElement("span");
  body.className = "body";
  body.textContent = content || "";
  d.append(meta, body);
  $("chat-log").appendChild(d);
  $("chat-log").scrollTop = $("chat-log").scrollHeight;
  return { d, meta, body };
}

function describe(sp, hdr) {
  if (!sp && !hdr) return "";
  const parts = [];
  if (sp) {
    parts.push(sp.route, sp.reason);
    if (typeof sp.route_score === "number") parts.push("route_score " + sp.route_score.toFixed(3));
    if (sp.redacted) parts.push("redacted " + sp.redacted.spans + " (" + sp.redacted.kinds.join(", ") + ")");
    if (sp.cloud && sp.cloud.model) parts.push(sp.cloud.model);
  } else parts.push(hdr);
  return parts.join(" · ");
}

async function send(ev) {
  ev.preventDefault();
  if (busy) return;
  const prompt = $("prompt").value.trim();
  if (!prompt) return;
  busy = true;
  $("send").disabled = true;
  history.push({ role: "user", content: prompt });
  addMsg("user", prompt);
  $("prompt").value = "";
  const out = addMsg("assistant", "");
  out.d.dataset.chunks = "0";
  const ext = { route: $("opt-route").value };
  if ($("opt-private").checked) ext.private = true;
  if ($("opt-pii").value) ext.pii = $("opt-pii").value;
  const body = { messages: history, stream: true, max_tokens: Number($("opt-max").value) || 128, spillway: ext };
  let answer = "";
  try {
    const r = await api("/v1/chat/completions", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const hdr = r.headers.get("X-Spillway-Route") || "";
    out.meta.className = "meta " + hdr.split(";")[0];
    out.meta.textContent = hdr;
    if (!r.ok) {
      const e = await r.json().catch(() => ({}));
      out.body.textContent = "error " + r.status + ": " + ((e.error && e.error.message) || "");
      out.body.className = "body error";
      if (r.status === 401) askKey("The key was not accepted.");
      history.pop();
      return;
    }
    const reader = r.body.getReader(), dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (!block.startsWith("data: ")) continue;
        const data = block.slice(6);
        if (data === "[DONE]") continue;
        const ch = JSON.parse(data);
        if (ch.error) { out.body.textContent = answer + "\n[error: " + ch.error.message + "]"; continue; }
        if (ch.spillway) out.meta.textContent = describe(ch.spillway, hdr);
        const c = ch.choices && ch.choices[0] && ch.choices[0].delta && ch.choices[0].delta.content;
        if (c) {
          answer += c;
          out.body.textContent = answer;
          out.d.dataset.chunks = String(Number(out.d.dataset.chunks) + 1);
        }
      }
    }
    history.push({ role: "assistant", content: answer });
    out.d.dataset.done = "1";
  } catch (e) {
    out.body.textContent = answer + "\n[" + String(e.message || e) + "]";
    out.body.className = "body error";
  } finally {
    busy = false;
    $("send").disabled = false;
    refresh();
  }
}

// ---- start ------------------------------------------------------------------------

async function start() {
  $("chat-form").addEventListener("submit", send);
  $("clear").addEventListener("click", () => { history = []; $("chat-log").replaceChildren(); });
  $("bucket").addEventListener("change", refresh);
  $("hw-cost").addEventListener("input", () => dayData && drawBreakeven(dayData));
  $("key-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    apiKey = $("key").value;
    $("key").value = "";
    $("key-form").hidden = true;
    loadModel();
    refresh();
  });
  const auth = await (await fetch("/web/auth.json", { cache: "no-store" })).json();
  if (auth.api_key_required) askKey("");
  else loadModel();
  refresh();
  setInterval(refresh, POLL_MS);
}

async function loadModel() {
  try {
    const m = await getJSON("/v1/models");
    $("model").textContent = m.data.map((x) => x.id + " (" + ((x.meta && x.meta.route) || "?") + ")").join(", ");
  } catch (e) { /* shown by refresh */ }
}

window.spillwayPage = { usage: () => lastUsage };
start();
