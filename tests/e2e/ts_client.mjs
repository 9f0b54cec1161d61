#!/usr/bin/env node
// End-to-end check of an MCP endpoint with the official TypeScript SDK (1.x).
//
//   node ts_client.mjs URL [--prefix demo__] [--transport streamable|sse]
//                          [--profile hub|everything] [--resource URI]
//                          [--expect-deleted-status CODE|any] [--allow-transport-errors]
//                          [--timeout-ms 30000] [--elicit]
//
// Steps: connect (initialize), tools/list (all pages) must contain the echo and
// sleep tools, tools/call echo (text must match), tools/call sleep with a
// progress callback (>= 2 notifications/progress), resources/read, prompts/get,
// then for Streamable HTTP terminateSession() (DELETE) and a raw POST with the
// deleted session id, whose HTTP status must be 404 per the spec (profile hub).
// With --elicit the client declares the elicitation capability and also calls the
// demo's test_elicitation tool: the elicitation/create it receives is answered, and the
// tool's result must carry that answer.
//
// Prints exactly one JSON line on stdout (`"ok": true|false`). On failure it
// also prints `ts_client: FAIL: <step>: <reason>` on stderr and exits 1
// (2 for bad usage, 3 for the overall timeout).
//
// Profiles map the steps onto a concrete server:
//   hub        – the demo server behind mcp-hub (echo {text}, sleep {ms}, ...)
//   everything – @modelcontextprotocol/server-everything (echo {message},
//                trigger-long-running-operation, demo:// resources, simple-prompt),
//                used to validate this script without the hub.

import { readFileSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';

const PROFILES = {
  hub: {
    echoTool: 'echo',
    echoArgs: (text) => ({ text }),
    echoExpect: (text) => text,
    sleepTool: 'sleep',
    sleepArgs: { ms: 400 },
    resource: 'test://static-text',
    prompt: 'test_simple_prompt',
    promptArgs: {},
    // The hub must answer 404 to a request on a deleted session (spec; see
    // shared/conformance.md). Reference servers answer 400.
    deletedStatus: 404,
  },
  everything: {
    echoTool: 'echo',
    echoArgs: (text) => ({ message: text }),
    echoExpect: (text) => `Echo: ${text}`,
    sleepTool: 'trigger-long-running-operation',
    sleepArgs: { duration: 1, steps: 4 },
    resource: 'demo://resource/static/document/architecture.md',
    prompt: 'simple-prompt',
    promptArgs: {},
    deletedStatus: 'any', // server-everything answers 400 (known deviation)
  },
};

function usage(msg) {
  if (msg) process.stderr.write(`ts_client: ${msg}\n`);
  process.stderr.write(
    'usage: node ts_client.mjs URL [--prefix P] [--transport streamable|sse] ' +
      '[--profile hub|everything] [--resource URI] [--expect-deleted-status CODE|any] ' +
      '[--allow-transport-errors] [--timeout-ms N]\n',
  );
  process.exit(2);
}

function parseArgs(argv) {
  const opts = {
    url: undefined,
    prefix: '',
    transport: 'streamable',
    profile: 'hub',
    resource: undefined,
    expectDeletedStatus: undefined,
    allowTransportErrors: false,
    timeoutMs: 30000,
    elicit: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--prefix') opts.prefix = next();
    else if (a === '--transport') opts.transport = next();
    else if (a === '--profile') opts.profile = next();
    else if (a === '--resource') opts.resource = next();
    else if (a === '--expect-deleted-status') opts.expectDeletedStatus = next();
    else if (a === '--allow-transport-errors') opts.allowTransportErrors = true;
    else if (a === '--elicit') opts.elicit = true;
    else if (a === '--timeout-ms') opts.timeoutMs = Number(next());
    else if (a === '-h' || a === '--help') usage();
    else if (a.startsWith('--')) usage(`unknown option ${a}`);
    else if (opts.url === undefined) opts.url = a;
    else usage(`unexpected argument ${a}`);
  }
  if (!opts.url) usage('URL is required');
  if (!['streamable', 'sse'].includes(opts.transport)) usage(`bad --transport ${opts.transport}`);
  if (!PROFILES[opts.profile]) usage(`bad --profile ${opts.profile}`);
  if (!Number.isFinite(opts.timeoutMs) || opts.timeoutMs <= 0) usage('bad --timeout-ms');
  try {
    new URL(opts.url);
  } catch {
    usage(`bad URL ${opts.url}`);
  }
  return opts;
}

function sdkVersion() {
  try {
    const pkg = new URL('./node_modules/@modelcontextprotocol/sdk/package.json', import.meta.url);
    return JSON.parse(readFileSync(pkg, 'utf8')).version;
  } catch {
    return 'unknown';
  }
}

const opts = parseArgs(process.argv.slice(2));
const profile = PROFILES[opts.profile];
const started = Date.now();
const summary = {
  ok: false,
  client: 'ts-sdk',
  sdk_version: sdkVersion(),
  transport: opts.transport,
  profile: opts.profile,
  url: opts.url,
  prefix: opts.prefix,
};
let step = 'start';
let finished = false;

function finish(ok, error) {
  if (finished) return;
  finished = true;
  summary.ok = ok;
  summary.elapsed_ms = Date.now() - started;
  if (!ok) {
    summary.failed_step = step;
    summary.error = error;
    process.stderr.write(`ts_client: FAIL: ${step}: ${error}\n`);
  }
  process.stdout.write(JSON.stringify(summary) + '\n');
}

class AssertionFailed extends Error {}
function check(cond, msg) {
  if (!cond) throw new AssertionFailed(msg);
}

const overall = setTimeout(() => {
  finish(false, `overall timeout of ${opts.timeoutMs} ms exceeded`);
  process.exit(3);
}, opts.timeoutMs);

// SDK 1.32 client race, not a server fault: Protocol dispatches notification
// handlers on a microtask but responses synchronously. When the last
// notifications/progress and the result arrive in one chunk and the transport
// dispatches both in the same tick (SSEClientTransport does; the wire order was
// checked to be progress-then-result), the response handler removes the
// progress handler first and the SDK reports "unknown token". Reported as a
// warning; the >= 2 progress assertion still holds.
const SDK_QUIRKS = [/progress notification for an unknown token/];
const transportErrors = [];
const transportWarnings = [];

async function main() {
  const url = new URL(opts.url);
  const transport =
    opts.transport === 'sse' ? new SSEClientTransport(url) : new StreamableHTTPClientTransport(url);
  const client = new Client(
    { name: 'mcp-hub-e2e-ts', version: '0.1.0' },
    { capabilities: opts.elicit ? { elicitation: {} } : {} },
  );
  const elicited = [];
  if (opts.elicit) {
    client.setRequestHandler(ElicitRequestSchema, async (req) => {
      elicited.push(req.params.message);
      return { action: 'accept', content: { username: 'ts-user', email: 'ts@example.com' } };
    });
  }
  // Client has no getter for the negotiated version; it hands it to the
  // transport's setter (both transports then send MCP-Protocol-Version).
  let negotiated = null;
  const setVersion = transport.setProtocolVersion?.bind(transport);
  transport.setProtocolVersion = (v) => {
    negotiated = v;
    setVersion?.(v);
  };
  let collectErrors = true;
  client.onerror = (err) => {
    // The SDK reports background failures (e.g. the GET stream answered
    // with something other than 2xx/405) only here, not as rejections.
    if (!collectErrors) return;
    const msg = String(err?.message ?? err);
    if (SDK_QUIRKS.some((re) => re.test(msg))) transportWarnings.push(msg);
    else transportErrors.push(msg);
  };
  const reqOpts = { timeout: 15000 };

  step = 'initialize';
  await client.connect(transport);
  const serverInfo = client.getServerVersion();
  summary.server_info = serverInfo ? { name: serverInfo.name, version: serverInfo.version } : null;
  summary.protocol_version = negotiated;
  summary.session_id_present = Boolean(transport.sessionId);
  const caps = client.getServerCapabilities() ?? {};
  check(caps.tools, 'server did not declare the tools capability');

  step = 'tools/list';
  const names = [];
  let cursor;
  let pages = 0;
  do {
    const page = await client.listTools(cursor ? { cursor } : {}, reqOpts);
    names.push(...page.tools.map((t) => t.name));
    cursor = page.nextCursor;
    pages++;
    check(pages <= 100, 'tools/list pagination did not end after 100 pages');
  } while (cursor);
  summary.tools_count = names.length;
  summary.tools_pages = pages;
  const echoName = `${opts.prefix}${profile.echoTool}`;
  const sleepName = `${opts.prefix}${profile.sleepTool}`;
  check(names.includes(echoName), `tool ${echoName} missing from tools/list (${names.length} tools: ${names.slice(0, 20).join(', ')})`);
  check(names.includes(sleepName), `tool ${sleepName} missing from tools/list`);

  step = 'tools/call echo';
  const text = `hello from ts ${process.pid} ✓`;
  const echo = await client.callTool({ name: echoName, arguments: profile.echoArgs(text) }, undefined, reqOpts);
  check(!echo.isError, `echo returned isError: ${JSON.stringify(echo.content)}`);
  const echoText = (echo.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('');
  check(echoText === profile.echoExpect(text), `echo text ${JSON.stringify(echoText)} != ${JSON.stringify(profile.echoExpect(text))}`);
  summary.echo = 'ok';

  step = 'tools/call sleep (progress)';
  const progress = [];
  const sleepRes = await client.callTool({ name: sleepName, arguments: profile.sleepArgs }, undefined, {
    ...reqOpts,
    onprogress: (p) => progress.push(p.progress),
  });
  check(!sleepRes.isError, `sleep returned isError: ${JSON.stringify(sleepRes.content)}`);
  summary.progress_notifications = progress.length;
  check(progress.length >= 2, `expected >= 2 progress notifications, got ${progress.length}`);
  for (let i = 1; i < progress.length; i++) {
    check(progress[i] > progress[i - 1], `progress not strictly increasing: ${progress.join(', ')}`);
  }

  step = 'resources/read';
  const resourceUri = opts.resource ?? profile.resource;
  const res = await client.readResource({ uri: resourceUri }, reqOpts);
  const first = (res.contents ?? [])[0];
  check(first, `resources/read ${resourceUri} returned no contents`);
  check(typeof first.text === 'string' && first.text.length > 0, `resources/read ${resourceUri}: first content has no text`);
  summary.resource_text_len = first.text.length;

  step = 'prompts/get';
  const promptName = `${opts.prefix}${profile.prompt}`;
  const prompt = await client.getPrompt({ name: promptName, arguments: profile.promptArgs }, reqOpts);
  check(Array.isArray(prompt.messages) && prompt.messages.length > 0, `prompt ${promptName} returned no messages`);
  summary.prompt_messages = prompt.messages.length;

  if (opts.elicit) {
    step = 'tools/call test_elicitation';
    const el = await client.callTool(
      { name: `${opts.prefix}test_elicitation`, arguments: { message: 'Who are you?' } },
      undefined,
      reqOpts,
    );
    const elText = (el.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('');
    check(elicited[0] === 'Who are you?', `elicitation/create not received: ${JSON.stringify(elicited)}`);
    check(elText.includes('ts@example.com') && elText.includes('accept'), `answer not in the result: ${elText}`);
    summary.elicitation = 'ok';
  }

  summary.transport_errors = [...transportErrors];
  if (transportWarnings.length) summary.transport_warnings = [...transportWarnings];
  if (!opts.allowTransportErrors) {
    check(transportErrors.length === 0, `transport reported errors: ${transportErrors.join(' | ')}`);
  }

  if (opts.transport === 'streamable') {
    const sessionId = transport.sessionId;
    const protocolVersion = negotiated;
    step = 'terminateSession (DELETE)';
    collectErrors = false;
    await transport.terminateSession();
    summary.terminated = true;

    if (sessionId) {
      step = 'request on deleted session';
      const resp = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-session-id': sessionId,
          ...(protocolVersion ? { 'mcp-protocol-version': protocolVersion } : {}),
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: 'after-delete', method: 'ping' }),
        signal: AbortSignal.timeout(5000),
      });
      await resp.body?.cancel();
      summary.deleted_session_status = resp.status;
      const want = opts.expectDeletedStatus ?? String(profile.deletedStatus);
      if (want !== 'any') {
        check(String(resp.status) === want, `request on a deleted session got HTTP ${resp.status}, expected ${want}`);
      }
    }
  }

  step = 'close';
  collectErrors = false;
  await client.close();
}

main()
  .then(() => {
    clearTimeout(overall);
    finish(true);
    process.exit(0);
  })
  .catch((err) => {
    clearTimeout(overall);
    let msg = err instanceof AssertionFailed ? err.message : `${err?.name ?? 'Error'}: ${err?.message ?? err}`;
    // undici hides the real reason (ECONNREFUSED, ...) in err.cause
    if (err?.cause) msg += ` (cause: ${err.cause?.code ?? ''} ${err.cause?.message ?? err.cause})`;
    summary.transport_errors ??= [...transportErrors];
    finish(false, msg);
    process.exit(1);
  });
