// Drives `bin/serve --agent echo` with the official openai npm client's
// Chat Completions and Models APIs, as chat front-ends use them:
// chat.completions.create (plain and streaming, with usage), the
// chat.completions.stream helper, models.list and an API error.
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

const messages = [
  { role: 'system', content: 'be brief' },
  { role: 'user', content: 'hello from node' },
];

test('chat.completions.create answers with a chat.completion', async () => {
  for (const base of ['/v1', '']) {
    const c = await client(base).chat.completions.create({ model: 'echo', messages });
    assert.match(c.id, /^chatcmpl-/);
    assert.equal(c.object, 'chat.completion');
    assert.equal(c.model, 'echo');
    assert.equal(c.choices.length, 1);
    assert.equal(c.choices[0].message.role, 'assistant');
    assert.equal(c.choices[0].message.content, 'echo: hello from node');
    assert.equal(c.choices[0].message.tool_calls, undefined);
    assert.equal(c.choices[0].finish_reason, 'stop');
  }
});

test('chat.completions.create with stream: true yields chunks, then usage', async () => {
  const stream = await client().chat.completions.create({
    model: 'echo',
    messages: [{ role: 'user', content: 'one two three' }],
    stream: true,
    stream_options: { include_usage: true },
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  const text = chunks.flatMap((c) => c.choices.map((ch) => ch.delta.content ?? '')).join('');
  assert.equal(text, 'echo: one two three');
  assert.ok(chunks.length >= 6, 'word-by-word chunks');
  const id = chunks[0].id;
  assert.ok(chunks.every((c) => c.id === id && c.object === 'chat.completion.chunk'));
  const finish = chunks.at(-2);
  assert.equal(finish.choices[0].finish_reason, 'stop');
  const usage = chunks.at(-1);
  assert.deepEqual(usage.choices, []);
  assert.equal(typeof usage.usage.total_tokens, 'number');
});

test('chat.completions.stream helper accumulates the final completion', async () => {
  const deltas = [];
  const stream = client().chat.completions.stream({ model: 'echo', messages });
  stream.on('content', (delta) => deltas.push(delta));
  const final = await stream.finalChatCompletion();
  assert.equal(final.choices[0].message.content, 'echo: hello from node');
  assert.equal(deltas.join(''), 'echo: hello from node');
});

test('models.list names the served agent', async () => {
  const ids = [];
  for await (const m of client().models.list()) {
    assert.equal(m.object, 'model');
    ids.push(m.id);
  }
  assert.deepEqual(ids, ['echo']);
  const m = await client().models.retrieve('echo');
  assert.equal(m.owned_by, 'agentrt');
});

test('chat errors reach the client as APIError with status and param', async () => {
  await assert.rejects(
    client().chat.completions.create({
      model: 'echo',
      messages,
      tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }],
    }),
    (err) => err instanceof OpenAI.BadRequestError && err.status === 400 && err.param === 'tools',
  );
  await assert.rejects(
    client().chat.completions.create({ model: 'echo', messages: [{ role: 'robot', content: 'x' }] }),
    (err) => err instanceof OpenAI.APIError && err.status === 400 && err.param === 'messages[0].role',
  );
});
