// The README's client examples run as written against `serve --dev --agent
// assistant`: each ```js block in README.md is written next to this file
// (so its imports resolve to the pinned packages), pointed at the test
// server instead of 127.0.0.1:8080, and run with node.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync, rmSync } from 'node:fs';
import { promisify } from 'node:util';
import path from 'node:path';
import { startServe, devServeBin, root } from './serve.mjs';

const run = promisify(execFile);
let serve;

before(async () => {
  serve = await startServe(devServeBin(), ['--dev', '--agent', 'assistant', '--store', 'memory']);
});

after(async () => {
  assert.equal(await serve.stop(), 0);
});

// The README's js blocks, in order.
function jsBlocks() {
  const md = readFileSync(path.join(root, 'README.md'), 'utf8');
  return [...md.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);
}

test('README has the AI SDK example', () => {
  assert.ok(jsBlocks().some((b) => b.includes("from 'ai'")), 'an AI SDK example in README.md');
});

test('every README js example runs as written', async () => {
  const blocks = jsBlocks();
  assert.ok(blocks.length >= 2);
  for (const [i, src] of blocks.entries()) {
    // Examples that use top-level await without imports are completed with
    // the import they assume.
    let code = src.replaceAll('127.0.0.1:8080', serve.addr);
    if (code.includes('new OpenAI(') && !code.includes('import OpenAI')) code = "import OpenAI from 'openai';\n" + code;
    const file = path.join(root, 'test', 'js', `.readme-example-${i}.mjs`);
    writeFileSync(file, code);
    try {
      const { stdout } = await run(process.execPath, [file], { timeout: 60_000 });
      assert.ok(stdout.trim().length > 0, `example ${i} printed nothing`);
      if (src.includes("from 'ai'")) assert.match(stdout, /\[ran (mcp\.)?main__docs__/, `example ${i}: ${stdout}`);
    } catch (err) {
      assert.fail(`README example ${i} failed:\n${code}\n${err.stderr || err}`);
    } finally {
      rmSync(file, { force: true });
    }
  }
});
