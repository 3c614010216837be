// Drives `bin/serve --agent echo` with the official openai npm client:
// responses.create (plain and streaming) and the responses.stream helper,
// which insists on response.created … response.completed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServe, prodServeBin } from './serve.mjs';

let serve;
let addr;

before(async () => {
  serve = await startServe(prodServeBin(), ['--agent', 'echo']);
  addr = serve.addr;
});

after(async () => {
  assert.equal(await serve.stop(), 0, 'serve should exit 0 after draining');
});

const client = (base = '/v1') => new OpenAI({ baseURL: `http://${addr}${base}`, apiKey: 'unused', maxRetries: 0 });

test('responses.create answers with a valid response object', async () => {
  for (const base of ['/v1', '']) {
    const resp = await client(base).responses.create({ model: 'echo', input: 'hello from node' });
    assert.match(resp.id, /^resp_/);
    assert.equal(resp.object, 'response');
    assert.equal(resp.status, 'completed');
    assert.equal(resp.output_text, 'echo: hello from node');
    assert.equal(resp.output[0].type, 'message');
    assert.deepEqual(resp.output[0].content[0].annotations, []);
  }
});

test('responses.create with stream: true yields the OpenAI event sequence', async () => {
  const stream = await client().responses.create({
    model: 'echo',
    input: [{ role: 'user', content: 'one two three' }],
    stream: true,
  });
  const types = [];
  let text = '';
  let seq = -1;
  let completed;
  for await (const ev of stream) {
    assert.equal(ev.sequence_number, seq + 1);
    seq = ev.sequence_number;
    types.push(ev.type);
    if (ev.type === 'response.output_text.delta') text += ev.delta;
    if (ev.type === 'response.completed') completed = ev.response;
  }
  assert.equal(types[0], 'response.created');
  assert.equal(types.at(-1), 'response.completed');
  assert.ok(types.filter((t) => t === 'response.output_text.delta').length >= 3, 'word-by-word deltas');
  assert.equal(text, 'echo: one two three');
  assert.equal(completed.output[0].content[0].text, text);
});

test('responses.stream helper accumulates the final response', async () => {
  const deltas = [];
  const stream = client().responses.stream({ model: 'echo', input: 'stream helper works' });
  stream.on('response.output_text.delta', (ev) => deltas.push(ev.delta));
  const final = await stream.finalResponse();
  assert.equal(final.output_text, 'echo: stream helper works');
  assert.equal(deltas.join(''), 'echo: stream helper works');
});

test('MLflow-style /invocations call', async () => {
  const res = await fetch(`http://${addr}/invocations`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      input: [{ role: 'user', content: 'from mlflow' }],
      custom_inputs: { k: 1 },
      context: { conversation_id: 'c1' },
    }),
  });
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.output[0].content[0].text, 'echo: from mlflow');
});

test('errors reach the client as APIError with status and param', async () => {
  await assert.rejects(
    client().responses.create({ model: 'echo', input: [{ role: 'robot', content: 'x' }] }),
    (err) => err instanceof OpenAI.APIError && err.status === 400 && err.param === 'input[0].role',
  );
});
