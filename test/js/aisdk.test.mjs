// Drives `serve --dev --agent assistant` with the Vercel AI SDK
// (`ai` + `@ai-sdk/openai`, the Responses model), the client most agent
// front-ends are built on. The SDK validates the Responses output union and
// treats every function_call it sees as a call the client must run, so this
// is where the OpenAI dialect's mcp_call items are proven.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateText, streamText, stepCountIs, tool, Output } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { z } from 'zod';
import { startServe, devServeBin } from './serve.mjs';

let serve;

before(async () => {
  serve = await startServe(devServeBin(), ['--dev', '--agent', 'assistant', '--store', 'memory']);
});

after(async () => {
  assert.equal(await serve.stop(), 0, 'serve should exit 0 after draining');
});

// alice's dev token, sent by the SDK as Authorization: Bearer.
const provider = () => createOpenAI({ baseURL: `http://${serve.addr}/v1`, apiKey: 'dev-alice-token' });
const model = () => provider().responses('assistant');
const question = 'How do I install Kestrel Gateway?';

// The text of the same question asked with plain fetch on /v1/responses.
async function responsesText(input) {
  const res = await fetch(`http://${serve.addr}/v1/responses`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: 'Bearer dev-alice-token' },
    body: JSON.stringify({ model: 'assistant', input }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  const body = await res.json();
  return body.output
    .filter((it) => it.type === 'message')
    .flatMap((it) => it.content.filter((p) => p.type === 'output_text').map((p) => p.text))
    .join('');
}

function assertExecutedByAgent(toolCalls, toolResults) {
  assert.ok(toolCalls.length >= 1, 'the agent ran at least one tool');
  for (const c of toolCalls) {
    assert.equal(c.providerExecuted, true, `${c.toolName} is shown as run by the provider`);
    assert.notEqual(c.invalid, true, `${c.toolName} is not an invalid client call`);
  }
  assert.equal(toolResults.length, toolCalls.length, 'every call has its result');
  for (const r of toolResults) {
    assert.equal(r.output?.type ?? r.result?.type ?? 'call', 'call');
  }
}

test('generateText: the agent\'s tool calls are provider-executed, finishReason stop', async () => {
  const r = await generateText({ model: model(), prompt: question });
  assert.equal(r.finishReason, 'stop');
  const calls = r.steps.flatMap((s) => s.toolCalls);
  const results = r.steps.flatMap((s) => s.toolResults);
  assertExecutedByAgent(calls, results);
  assert.equal(r.steps.length, 1, 'no second request: nothing was left to the client');
  assert.equal(r.text, await responsesText(question));
});

test('streamText: no client tool calls, no error parts, text as on /v1/responses', async () => {
  const r = streamText({ model: model(), prompt: question });
  const parts = [];
  for await (const p of r.fullStream) parts.push(p);
  assert.deepEqual(parts.filter((p) => p.type === 'error'), []);
  assert.equal(await r.finishReason, 'stop');
  const calls = parts.filter((p) => p.type === 'tool-call');
  const results = parts.filter((p) => p.type === 'tool-result');
  assertExecutedByAgent(calls, results);
  assert.equal(await r.text, await responsesText(question));
});

test('toUIMessageStream (what useChat renders) has no error parts', async () => {
  const r = streamText({ model: model(), prompt: question });
  const kinds = new Set();
  for await (const chunk of r.toUIMessageStream()) kinds.add(chunk.type);
  for (const bad of ['error', 'tool-input-error', 'tool-output-error']) {
    assert.ok(!kinds.has(bad), `UI stream has ${bad}: ${[...kinds]}`);
  }
  assert.ok(kinds.has('tool-output-available'), `UI stream shows the agent's tool results: ${[...kinds]}`);
  assert.ok(kinds.has('text-delta'));
});

test('a client tool with execute and stopWhen round-trips', async () => {
  let ran = 0;
  const r = await generateText({
    model: model(),
    prompt: 'What is the weather forecast in Paris?',
    tools: {
      forecast: tool({
        description: 'Get the weather forecast for a city',
        inputSchema: z.object({ city: z.string() }),
        execute: async ({ city }) => { ran++; return `sunny in ${city}`; },
      }),
    },
    stopWhen: stepCountIs(3),
    // Until the server stores responses, send whole items, not references.
    providerOptions: { openai: { store: false } },
  });
  assert.equal(ran, 1, 'the client ran its tool once');
  assert.equal(r.steps.length, 2);
  assert.equal(r.steps[0].finishReason, 'tool-calls');
  assert.equal(r.finishReason, 'stop');
  assert.match(r.text, /sunny in/);
});

test('Output.object with a zod schema returns a valid object', async () => {
  const schema = z.object({ answer: z.string(), confidence: z.number().min(0).max(1) });
  const r = await generateText({ model: model(), prompt: 'Summarise the Kestrel docs', output: Output.object({ schema }) });
  assert.equal(r.finishReason, 'stop');
  const obj = r.output;
  assert.equal(typeof obj.answer, 'string');
  assert.ok(obj.confidence >= 0 && obj.confidence <= 1);
});

test('store: true (the SDK default) holds a three-turn conversation through item references', async () => {
  const messages = [{ role: 'user', content: 'How do I install Kestrel Gateway?' }];
  const sent = [];
  const recording = createOpenAI({
    baseURL: `http://${serve.addr}/v1`, apiKey: 'dev-alice-token',
    fetch: async (url, init) => { sent.push(JSON.parse(init.body)); return fetch(url, init); },
  }).responses('assistant');
  for (const next of ['And what does the sales data say about revenue by region?', 'Which question did I ask first?']) {
    const r = await generateText({ model: recording, messages });
    assert.equal(r.finishReason, 'stop');
    messages.push(...r.response.messages, { role: 'user', content: next });
  }
  const last = await generateText({ model: recording, messages });
  const refs = sent.at(-1).input.filter((it) => it.type === 'item_reference');
  assert.ok(refs.length >= 2, `the SDK sent earlier turns as item references: ${JSON.stringify(sent.at(-1).input)}`);
  // The answer depends on the first turn, which reached the agent only as
  // references the server resolved.
  assert.match(last.text, /Kestrel Gateway/);
});
