// The dashboard in a real browser: Debian's Chromium driven by playwright-core (no browser
// download) against a hub this script starts on a free loopback port with a temporary state
// directory. Checks what an operator does: the demo server shows ready; Restart shows
// "restarting" then "ready" with one more restart; a bad form shows the API's message next
// to the field; a server added through the form appears and becomes ready. Saves a
// screenshot and prints its path.
//
//   node tests/browser/dashboard.test.mjs        (after `cargo build --bin mcp-hub`)
//
// Environment: MCP_HUB_BIN (default target/debug/mcp-hub), CHROMIUM (default
// /usr/bin/chromium), MCP_HUB_BROWSER_OUT (screenshot folder, default target/browser).

import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const HUB_BIN = process.env.MCP_HUB_BIN || path.join(ROOT, "target/debug/mcp-hub");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const OUT = process.env.MCP_HUB_BROWSER_OUT || path.join(ROOT, "target/browser");
const STEP_TIMEOUT = 30_000;
const WHOLE_TIMEOUT = 240_000;

let passed = 0;
const log = (msg) => console.log(`[browser] ${msg}`);
function ok(what) {
  passed += 1;
  log(`ok ${passed} - ${what}`);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function waitReady(base, hub, within) {
  const until = Date.now() + within;
  while (Date.now() < until) {
    if (hub.exitCode !== null) throw new Error(`hub exited with ${hub.exitCode} before it was ready`);
    try {
      const r = await fetch(`${base}/readyz`);
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`hub not ready at ${base}/readyz after ${within} ms`);
}

// One MCP session over Streamable HTTP, `n` calls of `tool`; returns when all answered.
async function mcpCalls(base, tool, n) {
  const headers = { "Content-Type": "application/json", Accept: "application/json, text/event-stream" };
  const rpc = async (body) => {
    const r = await fetch(`${base}/mcp`, { method: "POST", headers, body: JSON.stringify(body) });
    const text = await r.text();
    const sid = r.headers.get("mcp-session-id");
    if (sid) headers["Mcp-Session-Id"] = sid;
    if (!r.ok) throw new Error(`${body.method}: HTTP ${r.status} ${text}`);
    const json = text.trimStart().startsWith("{")
      ? text
      : text.split("\n").filter((l) => l.startsWith("data: {")).map((l) => l.slice(6)).pop();
    return json ? JSON.parse(json) : null;
  };
  await rpc({ jsonrpc: "2.0", id: 1, method: "initialize", params: {
    protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "browser-test", version: "1" } } });
  headers["MCP-Protocol-Version"] = "2025-11-25";
  await rpc({ jsonrpc: "2.0", method: "notifications/initialized" });
  for (let i = 0; i < n; i++) {
    const res = await rpc({ jsonrpc: "2.0", id: 10 + i, method: "tools/call", params: { name: tool, arguments: { text: `hi ${i}` } } });
    if (!res || !res.result) throw new Error(`${tool}: ${JSON.stringify(res)}`);
  }
}

const work = mkdtempSync(path.join(os.tmpdir(), "mcp-hub-browser-"));
const hubLog = path.join(work, "hub.log");
let hub = null;
let context = null;

async function cleanup() {
  if (context) await context.close().catch(() => {});
  if (hub && hub.exitCode === null) {
    hub.kill("SIGTERM");
    await new Promise((r) => {
      const t = setTimeout(() => { hub.kill("SIGKILL"); r(); }, 5000);
      hub.once("exit", () => { clearTimeout(t); r(); });
    });
  }
}

async function main() {
  if (!existsSync(HUB_BIN)) throw new Error(`${HUB_BIN} missing: run cargo build --bin mcp-hub`);
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} missing: apt-get install chromium`);
  mkdirSync(OUT, { recursive: true });

  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env = { ...process.env, MCP_HUB_LISTEN: `127.0.0.1:${port}`, MCP_HUB_STATE_DIR: path.join(work, "state") };
  delete env.REDIS_URL; // one instance on the embedded store
  delete env.MCP_HUB_ADMIN_TOKEN; // loopback without a token: the dashboard needs none
  const out = openSync(hubLog, "w");
  hub = spawn(HUB_BIN, ["serve", "--config", path.join(ROOT, "config/hub.toml")], {
    env, stdio: ["ignore", out, out],
  });
  log(`hub ${HUB_BIN} on ${base}, log ${hubLog}`);
  await waitReady(base, hub, 60_000);
  ok("hub ready");

  context = await chromium.launchPersistentContext(path.join(work, "profile"), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
    viewport: { width: 1360, height: 1000 },
  });
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(STEP_TIMEOUT);
  const consoleErrors = [];
  // The deliberate 400 below is logged by Chromium as a failed resource; anything else counts.
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().includes("status of 400")) consoleErrors.push(m.text());
  });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));

  await page.goto(`${base}/ui`);
  const title = await page.title();
  if (title !== "mcp-hub dashboard") throw new Error(`title is ${JSON.stringify(title)}`);
  await page.waitForSelector('tr[data-id="demo"][data-status="ready"]');
  await page.waitForSelector("#live.on");
  ok("dashboard loads, live, demo shows ready");

  const restartsCell = page.locator('tr[data-id="demo"] td.restarts');
  const before = Number(await restartsCell.textContent());
  const pidBefore = await page.locator('tr[data-id="demo"] td:nth-child(4)').textContent();
  // A restart of the demo server takes tens of milliseconds: record every status the row
  // shows from before the click, rather than hoping to poll while it says "restarting".
  await page.evaluate(() => {
    window.demoStatuses = [];
    const seen = () => {
      const row = document.querySelector('tr[data-id="demo"]');
      const st = row && row.dataset.status;
      if (st && window.demoStatuses.at(-1) !== st) window.demoStatuses.push(st);
    };
    new MutationObserver(seen).observe(document.querySelector("#servers tbody"), {
      childList: true, subtree: true, attributes: true,
    });
  });
  await page.click('tr[data-id="demo"] button[data-action="restart"]');
  await page.waitForFunction(() => window.demoStatuses.includes("restarting"));
  ok("restart shows restarting");
  await page.waitForFunction(() => {
    const s = window.demoStatuses;
    return s.indexOf("ready", s.indexOf("restarting")) > 0;
  });
  await page.waitForFunction(
    (n) => Number(document.querySelector('tr[data-id="demo"] td.restarts').textContent) === n,
    before + 1,
  );
  const pidAfter = await page.locator('tr[data-id="demo"] td:nth-child(4)').textContent();
  if (pidAfter === pidBefore) throw new Error(`pid unchanged after restart (${pidAfter})`);
  ok(`ready again with restarts ${before} -> ${before + 1}, pid ${pidBefore} -> ${pidAfter}`);

  // A definition the API refuses: its message appears beside the form, on the named field.
  await page.fill("#f-id", "broken");
  await page.selectOption("#f-transport", "streamable_http");
  await page.click("#f-save");
  await page.waitForSelector("#form-error:not([hidden])");
  const formError = await page.textContent("#form-error");
  if (!formError.startsWith("url:")) throw new Error(`form error ${JSON.stringify(formError)}`);
  await page.waitForSelector("#f-url:focus");
  if (!(await page.locator(".field.invalid #f-url").count())) throw new Error("url field not marked invalid");
  ok(`validation message shown: ${formError}`);
  await page.screenshot({ path: path.join(OUT, "dashboard-validation.png"), fullPage: true });

  // The same for a REST definition: the message lands on the Base URL input.
  await page.selectOption("#f-transport", "rest");
  await page.fill("#f-base_url", "ftp://api.example.com");
  await page.click("#f-save");
  await page.waitForFunction(() => document.querySelector("#form-error").textContent.startsWith("base_url:"));
  if (!(await page.locator(".field.invalid #f-base_url").count())) throw new Error("base_url field not marked invalid");
  ok(`rest validation message shown: ${await page.textContent("#form-error")}`);

  await page.click("#f-clear");
  await page.fill("#f-id", "demo2");
  await page.selectOption("#f-transport", "stdio");
  await page.fill("#f-command", "@self");
  await page.fill("#f-args", "demo-server");
  await page.click("#f-save");
  await page.waitForSelector('tr[data-id="demo2"]');
  await page.waitForSelector('tr[data-id="demo2"][data-status="ready"]');
  if (await page.locator("#form-error:not([hidden])").count()) {
    throw new Error(`form error after a valid add: ${await page.textContent("#form-error")}`);
  }
  ok("demo2 added through the form and ready");

  const servers = await (await fetch(`${base}/api/servers`)).json();
  if (!servers.servers.some((s) => s.id === "demo2" && s.runtime.status === "ready")) {
    throw new Error("demo2 not ready according to the API");
  }
  ok("API agrees: demo2 ready");

  // Calls through /mcp show up in the totals and in demo's row (stats arrive every 2 s).
  await mcpCalls(base, "demo__echo", 3);
  await page.waitForFunction(() => Number(document.querySelector("#sum-calls").textContent) >= 3);
  await page.waitForFunction(() => {
    const cells = document.querySelectorAll('tr[data-id="demo"] td');
    return cells[9].textContent === "3" && cells[10].textContent.endsWith(" ms");
  });
  ok("3 calls to demo__echo counted, with a mean latency");
  // A server whose program does not exist: the row shows the failure and its reason.
  const put = await fetch(`${base}/api/servers/broken`, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ transport: "stdio", command: "/missing/mcp-server" }),
  });
  if (put.status !== 201) throw new Error(`register broken: HTTP ${put.status}`);
  await page.waitForFunction(() => {
    const row = document.querySelector('tr[data-id="broken"]');
    return row && row.dataset.status !== "ready" && !row.querySelector("td.failure .muted");
  });
  ok(`failing server shows its last failure: ${await page.textContent('tr[data-id="broken"] td.failure')}`);

  const shot = path.join(OUT, "dashboard.png");
  await page.screenshot({ path: shot, fullPage: true });
  log(`screenshot: ${shot}`);

  page.once("dialog", (d) => d.accept());
  await page.click('tr[data-id="broken"] button[data-action="delete"]');
  await page.waitForSelector('tr[data-id="broken"]', { state: "detached" });
  ok("broken deleted through its Delete button");
  if (consoleErrors.length) throw new Error(`console errors: ${consoleErrors.join(" | ")}`);
  ok("no console errors");
}

const watchdog = setTimeout(() => {
  console.error(`[browser] FAIL: still running after ${WHOLE_TIMEOUT / 1000} s`);
  cleanup().finally(() => process.exit(1));
}, WHOLE_TIMEOUT);

let failed = 0;
try {
  await main();
} catch (e) {
  failed = 1;
  console.error(`[browser] FAIL: ${e.stack || e}`);
  if (context) {
    const shot = path.join(OUT, "dashboard-failure.png");
    const page = context.pages()[0];
    if (page) await page.screenshot({ path: shot, fullPage: true }).then(() => log(`failure screenshot: ${shot}`), () => {});
  }
  if (existsSync(hubLog)) {
    const lines = readFileSync(hubLog, "utf8").trimEnd().split("\n");
    console.error(`---- last 40 lines of ${hubLog} ----\n${lines.slice(-40).join("\n")}`);
  }
} finally {
  await cleanup();
  clearTimeout(watchdog);
  if (!failed) rmSync(work, { recursive: true, force: true });
}
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
