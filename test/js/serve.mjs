// Starting and stopping serve for the client tests.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

// The production build (no dev workspace), as the image holds it.
export function prodServeBin() {
  const bin = process.env.SERVE_BIN || path.join(root, 'bin', 'serve-prod');
  if (!existsSync(bin)) {
    execFileSync('go', ['build', '-tags', 'agentrt_nodev', '-o', bin, './cmd/serve'], { cwd: root, stdio: 'inherit' });
  }
  return bin;
}

// A build with the dev workspace, for `serve --dev`.
export function devServeBin() {
  const bin = process.env.DEV_SERVE_BIN || path.join(root, 'bin', 'serve');
  if (!existsSync(bin)) {
    execFileSync('go', ['build', '-o', bin, './cmd/serve'], { cwd: root, stdio: 'inherit' });
  }
  return bin;
}

// startServe runs bin with args on a free loopback port and resolves once
// it listens. stop() sends SIGTERM and resolves with the exit code.
export async function startServe(bin, args) {
  // The default response store lives in the state directory: a fresh one
  // per server, so no test writes to the user's.
  const state = mkdtempSync(path.join(os.tmpdir(), 'agentrt-js-'));
  const proc = spawn(bin, [...args, '--addr', '127.0.0.1:0', '--log-format', 'json'], {
    stdio: ['ignore', 'inherit', 'pipe'],
    env: { ...process.env, XDG_STATE_HOME: state },
  });
  proc.once('exit', () => rmSync(state, { recursive: true, force: true }));
  const addr = await new Promise((resolve, reject) => {
    const lines = createInterface({ input: proc.stderr });
    lines.on('line', (line) => {
      let rec;
      try { rec = JSON.parse(line); } catch { return; }
      if (rec.msg === 'listening') resolve(rec.addr);
    });
    proc.once('exit', (code) => reject(new Error(`serve exited early with ${code}`)));
  });
  return {
    addr,
    async stop() {
      if (proc.exitCode !== null) return proc.exitCode;
      const exited = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
      proc.kill('SIGTERM');
      return exited;
    },
  };
}
