// mcp-hub dashboard: plain JavaScript, no build step. Everything it shows comes from the
// admin API (/api); live updates come from /api/events, read with fetch rather than
// EventSource because EventSource cannot send the Authorization header (and a token in the
// URL would end up in logs and history).
"use strict";

const TOKEN_KEY = "mcp-hub.admin-token";
const STATUSES = ["starting", "ready", "restarting", "stopped", "failed"];

const servers = new Map(); // id -> row from /api/servers or /api/events
const restarting = new Set(); // ids whose restart request is in flight
let stats = null;
let editing = null; // id of the server being edited, or null when adding
let events = null; // AbortController of the live stream

const $ = (id) => document.getElementById(id);

// ---- API -------------------------------------------------------------------------------

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

function authHeaders() {
  const t = token();
  return t ? { Authorization: "Bearer " + t } : {};
}

class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || "HTTP " + status);
    this.status = status;
    this.field = err.field || null;
  }
}

async function api(method, path, body) {
  const init = { method, headers: { ...authHeaders() } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (resp.status === 401) needToken(data);
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}

// ---- Notices and login -------------------------------------------------------------------

function notice(message, ok) {
  const el = $("notice");
  el.textContent = message;
  el.className = ok ? "notice ok" : "notice";
  el.hidden = !message;
  if (ok) setTimeout(() => { if (el.textContent === message) el.hidden = true; }, 4000);
}

function needToken(body) {
  const why = body && body.error ? body.error.message : "unauthorized";
  notice("The admin API refused the request (" + why + "). Enter the admin token above.");
  $("token").focus();
}

function setupLogin() {
  $("token").value = token();
  $("login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    notice("");
    refresh();
  });
  $("forget").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    $("token").value = "";
    refresh();
  });
}

// ---- Rendering ---------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c === null || c === undefined ? "" : c);
  return node;
}

function ago(secs) {
  const d = Math.max(0, Math.round(Date.now() / 1000 - secs));
  if (d < 60) return d + " s ago";
  if (d < 3600) return Math.round(d / 60) + " min ago";
  if (d < 86400) return Math.round(d / 3600) + " h ago";
  return Math.round(d / 86400) + " d ago";
}

function num(v) {
  return v === undefined || v === null ? "–" : String(v);
}

function renderServers() {
  const tbody = document.querySelector("#servers tbody");
  const rows = [...servers.values()].sort((a, b) => a.id.localeCompare(b.id));
  tbody.replaceChildren(...rows.map(renderRow));
  $("empty").hidden = rows.length > 0;
}

function renderRow(s) {
  const rt = s.runtime || {};
  const status = restarting.has(s.id) ? "restarting" : rt.status || "stopped";
  const calls = stats && stats.calls.by_server[s.id];
  const failure = rt.last_error
    ? el("span", { title: new Date(rt.last_error.at * 1000).toLocaleString() },
        ago(rt.last_error.at) + ": " + rt.last_error.reason)
    : el("span", { class: "muted" }, "none");
  const label = status + (status === "restarting" && restarting.has(s.id) ? "…" : "");
  return el("tr", { "data-id": s.id, "data-status": status },
    el("td", { class: "id" }, s.id),
    el("td", {}, s.transport + (s.enabled === false ? " (disabled)" : "")),
    el("td", {}, el("span", { class: "status st-" + status }, label),
      rt.breaker && rt.breaker !== "closed"
        ? el("span", { class: "status st-failed breaker", title: "Circuit breaker: calls fail fast until a probe succeeds" },
            "breaker " + rt.breaker.replace("_", "-"))
        : null),
    el("td", { class: "n" }, num(rt.pid)),
    el("td", { class: "n restarts" }, num(rt.restarts)),
    el("td", { class: "failure" }, failure),
    el("td", { class: "n" }, num(rt.in_flight)),
    el("td", { class: "n" }, num(rt.queue_depth)),
    el("td", { class: "n" }, num(rt.tool_count)),
    el("td", { class: "n" }, calls ? calls.calls + (calls.errors ? " (" + calls.errors + " failed)" : "") : "0"),
    el("td", { class: "n" }, calls && calls.mean_latency_ms !== undefined ? calls.mean_latency_ms.toFixed(1) + " ms" : "–"),
    el("td", { class: "row-actions" },
      el("button", {
        class: "small", type: "button", "data-action": "restart",
        title: "Restart the worker and wait until it is ready",
        onclick: () => restart(s.id),
        ...(restarting.has(s.id) || !rt.pid && rt.status === "stopped" ? { disabled: "" } : {}),
      }, "Restart"),
      el("button", { class: "small quiet", type: "button", "data-action": "edit", onclick: () => edit(s.id) }, "Edit"),
      el("button", { class: "small danger", type: "button", "data-action": "delete", onclick: () => remove(s.id) }, "Delete")));
}

function renderStats() {
  const total = servers.size;
  const ready = [...servers.values()].filter((s) => (s.runtime || {}).status === "ready").length;
  $("sum-servers").textContent = ready + " / " + total;
  if (!stats) return;
  $("sum-sessions").textContent = stats.sessions.total;
  $("sum-calls").textContent = stats.calls.total;
  $("sum-errors").textContent = stats.calls.errors;
  $("sum-inflight").textContent = stats.calls.in_flight + " / " + stats.calls.queue_depth;
}

function render() {
  renderServers();
  renderStats();
}

// ---- Actions -----------------------------------------------------------------------------

async function restart(id) {
  restarting.add(id);
  render();
  try {
    const res = await api("POST", "/api/servers/" + encodeURIComponent(id) + "/restart");
    const s = servers.get(id);
    if (s) s.runtime = res.runtime;
    notice(id + " restarted: " + res.runtime.status, true);
  } catch (e) {
    notice("Restart of " + id + " failed: " + e.message);
  } finally {
    restarting.delete(id);
    render();
  }
}

async function remove(id) {
  if (!confirm("Delete server " + id + "? Its worker stops and its tools disappear.")) return;
  try {
    await api("DELETE", "/api/servers/" + encodeURIComponent(id));
    servers.delete(id);
    render();
    notice("Deleted " + id, true);
  } catch (e) {
    notice("Delete of " + id + " failed: " + e.message);
  }
}

// ---- The form ----------------------------------------------------------------------------

const FORM_FIELDS = ["id", "transport", "command", "args", "url", "base_url", "timeout_ms", "max_concurrency", "enabled", "extra"];

// Which inputs each transport uses; the others are hidden (and not sent).
const TRANSPORT_FIELDS = { stdio: "stdio-only", streamable_http: "http-only", sse: "http-only", rest: "rest-only" };

function showTransportFields() {
  const shown = TRANSPORT_FIELDS[$("f-transport").value];
  for (const cls of new Set(Object.values(TRANSPORT_FIELDS))) {
    document.querySelectorAll("." + cls).forEach((n) => n.classList.toggle("hidden-by-transport", cls !== shown));
  }
}

function clearFormErrors() {
  $("form-error").hidden = true;
  $("form-error").textContent = "";
  document.querySelectorAll(".field.invalid").forEach((f) => f.classList.remove("invalid"));
  document.querySelectorAll(".field-msg").forEach((m) => m.remove());
}

function formError(field, message) {
  // The API names the key at fault ("url", "headers.X-Key", "args[0]"): mark the input that
  // holds it, and keep the full message beside the Save button.
  const key = field ? field.split(/[.[]/)[0] : null;
  const input = key && FORM_FIELDS.includes(key) ? $("f-" + key) : field ? $("f-extra") : null;
  if (input) {
    const box = input.closest(".field");
    box.classList.add("invalid");
    box.append(el("span", { class: "field-msg" }, message));
    input.focus();
  }
  $("form-error").textContent = (field ? field + ": " : "") + message;
  $("form-error").hidden = false;
}

function resetForm() {
  editing = null;
  $("server-form").reset();
  $("f-id").disabled = false;
  $("form-title").textContent = "Add a server";
  clearFormErrors();
  showTransportFields();
}

function edit(id) {
  const s = servers.get(id);
  if (!s) return;
  resetForm();
  editing = id;
  $("form-title").textContent = "Edit " + id;
  $("f-id").value = id;
  $("f-id").disabled = true;
  if (![...$("f-transport").options].some((o) => o.value === s.transport)) {
    $("f-transport").append(el("option", { value: s.transport }, s.transport));
  }
  $("f-transport").value = s.transport;
  $("f-command").value = s.command || "";
  $("f-args").value = (s.args || []).join("\n");
  $("f-url").value = s.url || "";
  $("f-base_url").value = s.base_url || "";
  $("f-timeout_ms").value = s.timeout_ms || "";
  $("f-max_concurrency").value = s.max_concurrency || "";
  $("f-enabled").checked = s.enabled !== false;
  const known = new Set([...FORM_FIELDS, "runtime"]);
  const extra = Object.fromEntries(Object.entries(s).filter(([k]) => !known.has(k)));
  $("f-extra").value = Object.keys(extra).length ? JSON.stringify(extra, null, 2) : "";
  showTransportFields();
  $("server-form").scrollIntoView({ behavior: "smooth" });
}

function readForm() {
  const body = { transport: $("f-transport").value, enabled: $("f-enabled").checked };
  const uses = TRANSPORT_FIELDS[body.transport];
  const command = $("f-command").value.trim();
  const args = $("f-args").value.split("\n").map((a) => a.trim()).filter(Boolean);
  const url = $("f-url").value.trim();
  const baseUrl = $("f-base_url").value.trim();
  if (uses === "stdio-only" && command) body.command = command;
  if (uses === "stdio-only" && args.length) body.args = args;
  if (uses === "http-only" && url) body.url = url;
  if (uses === "rest-only" && baseUrl) body.base_url = baseUrl;
  for (const key of ["timeout_ms", "max_concurrency"]) {
    const v = $("f-" + key).value.trim();
    if (v) body[key] = /^\d+$/.test(v) ? Number(v) : v; // the API explains a non-number
  }
  const extraText = $("f-extra").value.trim();
  if (extraText) {
    let extra;
    try { extra = JSON.parse(extraText); } catch (e) { throw new ApiError(0, { error: { field: "extra", message: "not valid JSON: " + e.message } }); }
    if (!extra || typeof extra !== "object" || Array.isArray(extra)) {
      throw new ApiError(0, { error: { field: "extra", message: "must be a JSON object, e.g. {\"env\": {\"KEY\": \"value\"}}" } });
    }
    for (const [k, v] of Object.entries(extra)) {
      if (v && typeof v === "object" && !Array.isArray(v)) {
        const redacted = Object.keys(v).find((name) => v[name] === "***");
        if (redacted) {
          throw new ApiError(0, { error: { field: "extra", message: k + "." + redacted + " is shown as *** because secrets are never sent back: type its value again" } });
        }
      }
      body[k] = v;
    }
  }
  return body;
}

async function save(ev) {
  ev.preventDefault();
  clearFormErrors();
  const id = editing || $("f-id").value.trim();
  if (!id) return formError("id", "give the server an id");
  let body;
  try {
    body = readForm();
  } catch (e) {
    return formError(e.field, e.message);
  }
  $("f-save").disabled = true;
  try {
    const row = await api("POST", "/api/servers/" + encodeURIComponent(id), body);
    servers.set(row.id, row);
    render();
    notice((editing ? "Saved " : "Added ") + row.id + "; its worker is starting.", true);
    resetForm();
  } catch (e) {
    if (e.status === 401) return;
    formError(e.field, e.message);
  } finally {
    $("f-save").disabled = false;
  }
}

function setupForm() {
  $("f-transport").addEventListener("change", showTransportFields);
  $("server-form").addEventListener("submit", save);
  $("f-clear").addEventListener("click", resetForm);
  showTransportFields();
}

// ---- Live updates ------------------------------------------------------------------------

function setLive(on) {
  $("live").className = "live " + (on ? "on" : "off");
  $("live").textContent = on ? "live" : "offline";
}

function dispatch(name, data) {
  if (name === "snapshot") {
    servers.clear();
    for (const s of data.servers) servers.set(s.id, s);
  } else if (name === "server") {
    servers.set(data.id, data);
  } else if (name === "server_removed") {
    servers.delete(data.id);
  } else if (name === "stats") {
    stats = data;
  } else {
    return;
  }
  render();
}

// Parses one SSE block ("event: x\ndata: {...}") and hands it on.
function parseBlock(block) {
  let name = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const i = line.indexOf(":");
    const field = i < 0 ? line : line.slice(0, i);
    const value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
    if (field === "event") name = value;
    else if (field === "data") data.push(value);
  }
  if (!data.length) return;
  try { dispatch(name, JSON.parse(data.join("\n"))); } catch (e) { console.warn("bad event", name, e); }
}

async function follow(signal) {
  for (let attempt = 0; !signal.aborted; attempt++) {
    try {
      const resp = await fetch("/api/events", { headers: { ...authHeaders(), Accept: "text/event-stream" }, signal });
      if (resp.status === 401) {
        needToken(await resp.json().catch(() => null));
        return; // a new token restarts the stream
      }
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      setLive(true);
      attempt = 0;
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value.replace(/\r\n?/g, "\n");
        let end;
        while ((end = buf.indexOf("\n\n")) >= 0) {
          parseBlock(buf.slice(0, end));
          buf = buf.slice(end + 2);
        }
      }
    } catch (e) {
      if (signal.aborted) return;
    }
    setLive(false);
    // Back off 0.5 s, 1 s, 2 s ... up to 10 s, with jitter so many tabs do not reconnect at once.
    const delay = Math.min(10000, 500 * 2 ** Math.min(attempt, 5)) * (0.75 + Math.random() / 2);
    await new Promise((r) => setTimeout(r, delay));
  }
}

function refresh() {
  if (events) events.abort();
  events = new AbortController();
  setLive(false);
  follow(events.signal);
}

document.addEventListener("DOMContentLoaded", () => {
  setupLogin();
  setupForm();
  render();
  refresh();
  // Keep "x s ago" honest between events.
  setInterval(renderServers, 15000);
});
