// Drives the official Daytona TypeScript SDK against daytona-emulator.
//
// Run by `tests/ts_sdk_compat.rs`, which starts the emulator and passes its URL and key in
// DAYTONA_API_URL / DAYTONA_API_KEY. Every check prints one line; the last line is the tally.
// The process must exit on its own soon after the tally (no socket.io or timer keeps it alive).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import {
  Daytona,
  DaytonaGitRepoNotFoundError,
  DaytonaNotFoundError,
  DaytonaTimeoutError,
  DaytonaValidationError,
} from '@daytonaio/sdk';

const apiUrl = process.env.DAYTONA_API_URL;
const apiKey = process.env.DAYTONA_API_KEY;
if (!apiUrl || !apiKey) {
  console.error('DAYTONA_API_URL and DAYTONA_API_KEY must be set');
  process.exit(2);
}

const run = `run-${Date.now()}-${Math.floor(Math.random() * 1e6)}`;
let passed = 0;
let failed = 0;

async function check(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    passed++;
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (err) {
    failed++;
    console.log(`FAIL ${name}: ${err?.stack ?? err}`);
  }
}

async function expectError(promise, cls) {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof cls, `expected ${cls.name}, got ${err?.constructor?.name}: ${err?.message}`);
    return err;
  }
  assert.fail(`expected ${cls.name}, but the call succeeded`);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A TCP port nothing listens on right now (for a server started inside the sandbox). */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Polls `cond` every 50 ms for up to `ms`. */
async function waitFor(cond, what, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const daytona = new Daytona({ apiKey, apiUrl, target: 'us' });
let sandbox;

await check('create with labels', async () => {
  sandbox = await daytona.create(
    { language: 'typescript', labels: { suite: 'compat', run } },
    { timeout: 60 },
  );
  assert.ok(sandbox.id, 'sandbox has an id');
  assert.equal(sandbox.state, 'started');
  assert.equal(sandbox.labels.run, run);
});

if (!sandbox) {
  console.log(`compat: ${passed} passed, ${failed + 1} failed`);
  process.exit(1);
}

await check('get by id', async () => {
  const again = await daytona.get(sandbox.id);
  assert.equal(again.id, sandbox.id);
  assert.equal(again.labels.suite, 'compat');
});

await check('list by label', async () => {
  const found = [];
  for await (const sb of daytona.list({ labels: { run } })) found.push(sb.id);
  assert.deepEqual(found, [sandbox.id]);
});

await check('executeCommand: output and exit codes', async () => {
  const ok = await sandbox.process.executeCommand('echo hello');
  assert.equal(ok.exitCode, 0);
  assert.equal(ok.result.trim(), 'hello');
  const bad = await sandbox.process.executeCommand('echo oops >&2; exit 3');
  assert.equal(bad.exitCode, 3);
  assert.match(bad.result, /oops/);
  const env = await sandbox.process.executeCommand('echo "$GREETING"', undefined, { GREETING: 'hi there' });
  assert.equal(env.result.trim(), 'hi there');
});

await check('executeCommand: timeout → DaytonaTimeoutError', async () => {
  const t0 = Date.now();
  await expectError(sandbox.process.executeCommand('sleep 30', undefined, undefined, 1), DaytonaTimeoutError);
  assert.ok(Date.now() - t0 < 10_000, 'timed out promptly');
});

await check('sessions: sync exec splits stdout and stderr', async () => {
  await sandbox.process.createSession('compat-sync');
  const res = await sandbox.process.executeSessionCommand('compat-sync', { command: 'echo out; echo err >&2' });
  assert.equal(res.exitCode, 0);
  assert.equal(res.stdout, 'out\n');
  assert.equal(res.stderr, 'err\n');
  await sandbox.process.deleteSession('compat-sync');
});

await check('sessions: async exec, log follow with callbacks, exit code', async () => {
  await sandbox.process.createSession('compat-async');
  const { cmdId } = await sandbox.process.executeSessionCommand('compat-async', {
    command: 'echo first; sleep 1; echo second >&2; echo third',
    runAsync: true,
  });
  assert.ok(cmdId, 'async exec returns a cmdId');
  let out = '';
  let err = '';
  await sandbox.process.getSessionCommandLogs('compat-async', cmdId, (c) => { out += c; }, (c) => { err += c; });
  assert.equal(out, 'first\nthird\n');
  assert.equal(err, 'second\n');
  const cmd = await sandbox.process.getSessionCommand('compat-async', cmdId);
  assert.equal(cmd.exitCode, 0);
  const logs = await sandbox.process.getSessionCommandLogs('compat-async', cmdId);
  assert.equal(logs.stdout, 'first\nthird\n');
  assert.equal(logs.stderr, 'second\n');
  await sandbox.process.deleteSession('compat-async');
});

const payload = randomBytes(256 * 1024);

await check('files: uploadFile / downloadFile round trip', async () => {
  await sandbox.fs.uploadFile(payload, 'compat/data.bin');
  const back = await sandbox.fs.downloadFile('compat/data.bin');
  assert.ok(Buffer.compare(back, payload) === 0, 'downloaded bytes equal uploaded bytes');
});

await check('files: createFolder, listFiles, getFileDetails', async () => {
  await sandbox.fs.createFolder('compat/sub', '755');
  const names = (await sandbox.fs.listFiles('compat')).map((f) => f.name).sort();
  assert.deepEqual(names, ['data.bin', 'sub']);
  const info = await sandbox.fs.getFileDetails('compat/data.bin');
  assert.equal(info.size, payload.length);
  assert.equal(info.isDir, false);
});

await check('files: deleteFile, then details → not found', async () => {
  await sandbox.fs.deleteFile('compat/data.bin');
  await expectError(sandbox.fs.getFileDetails('compat/data.bin'), DaytonaNotFoundError);
});

await check('files: searchFiles, findFiles, replaceInFiles as the v0.190.0 daemon answers', async () => {
  await sandbox.fs.uploadFiles([
    { source: Buffer.from('hello world\nbye\n'), destination: 'compat/find/a.txt' },
    { source: Buffer.from('say hello\n'), destination: 'compat/find/deep/b.md' },
  ]);
  // Search matches each name with Go's filepath.Match, at any depth; paths as the request
  // spelled them (relative here). No globstar; a bad pattern finds nothing.
  assert.deepEqual((await sandbox.fs.searchFiles('compat/find', '*.md')).files, ['compat/find/deep/b.md']);
  assert.deepEqual((await sandbox.fs.searchFiles('compat/find', 'deep')).files, ['compat/find/deep']);
  assert.deepEqual((await sandbox.fs.searchFiles('compat/find', '**/*.md')).files, []);
  assert.deepEqual((await sandbox.fs.searchFiles('compat/find', '[')).files, []);
  // Find: literal substring per line, files in walk order.
  const matches = await sandbox.fs.findFiles('compat/find', 'hello');
  assert.deepEqual(
    matches.map((m) => [m.file, m.line, m.content]),
    [['compat/find/a.txt', 1, 'hello world'], ['compat/find/deep/b.md', 1, 'say hello']],
  );
  // Replace: per-file results, Go's error text for a missing file.
  const results = await sandbox.fs.replaceInFiles(['compat/find/a.txt', 'compat/find/none.txt'], 'hello', 'goodbye');
  assert.deepEqual(results[0], { file: 'compat/find/a.txt', success: true });
  assert.equal(results[1].success, false);
  assert.equal(results[1].error, 'open compat/find/none.txt: no such file or directory');
  const back = await sandbox.fs.downloadFile('compat/find/a.txt');
  assert.equal(back.toString(), 'goodbye world\nbye\n');
});

await check('pty: createPty, output, exit code 3 from wait()', async () => {
  const id = `compat-pty-${run}`;
  const decoder = new TextDecoder();
  let out = '';
  const pty = await sandbox.process.createPty({
    id,
    cols: 100,
    rows: 30,
    onData: (data) => {
      out += decoder.decode(data, { stream: true });
    },
  });
  await pty.sendInput('tty; stty size; echo hi; exit 3\n');
  const result = await pty.wait();
  assert.equal(result.exitCode, 3);
  assert.equal(result.error, 'non-zero exit');
  assert.match(out, /\bhi\r?\n/, 'the echo reached onData');
  assert.match(out, /30 100/, 'the terminal has the requested size');
  assert.match(out, /\/dev\/pts\//, 'tty names a real terminal');
  // The v0.190.0 daemon deletes a PTY session when its shell exits (process/pty/session.go).
  await assert.rejects(sandbox.process.getPtySessionInfo(id), /not found/i, 'an exited session is gone');
  await pty.disconnect();
  const left = await sandbox.process.listPtySessions();
  assert.ok(!left.some((p) => p.id === id), 'an exited session is not listed');
});

await check('pty: resize through the handle, kill', async () => {
  const id = `compat-pty2-${run}`;
  let out = '';
  const decoder = new TextDecoder();
  const pty = await sandbox.process.createPty({ id, onData: (d) => { out += decoder.decode(d, { stream: true }); } });
  assert.ok(pty.isConnected());
  const resized = await pty.resize(120, 40);
  assert.equal(resized.cols, 120);
  await pty.sendInput('stty size\n');
  await waitFor(() => out.includes('40 120'), 'stty to see the new size');
  await pty.kill();
  const result = await pty.wait();
  assert.equal(result.error, 'SIGKILL');
  assert.notEqual(result.exitCode, 0);
});

let pySandbox;
await check('codeRun on a python sandbox', async () => {
  pySandbox = await daytona.create({ language: 'python', labels: { suite: 'compat-python' } }, { timeout: 60 });
  const res = await pySandbox.process.codeRun('print(1+1)');
  assert.equal(res.exitCode, 0);
  assert.equal(res.result.trim(), '2');
  assert.deepEqual(res.artifacts.charts, []);
  const failing = await pySandbox.process.codeRun('import sys\nprint("argv", sys.argv[1:])\nsys.exit(5)', { argv: ['a', 'b'] });
  assert.equal(failing.exitCode, 5);
  assert.equal(failing.result.trim(), "argv ['a', 'b']");
});

await check('codeRun typescript: runs, or a clear error without a TypeScript runner', async () => {
  try {
    const res = await sandbox.process.codeRun('const n: number = 40 + 2; console.log(n)');
    assert.equal(res.result.trim(), '42');
  } catch (err) {
    assert.ok(err instanceof DaytonaValidationError, `${err?.constructor?.name}: ${err?.message}`);
    assert.match(err.message, /not available on this machine/);
  }
});

// The stateful interpreter (the daemon's process/interpreter): Python whatever the sandbox's
// language, one worker per context whose state carries over.
await check('codeInterpreter: runCode streams through onStdout/onStderr, state carries over', async () => {
  let out = '';
  let err = '';
  const first = await sandbox.codeInterpreter.runCode(
    'import sys\nanswer = 40\nprint("hello")\nprint("careful", file=sys.stderr)',
    { onStdout: (m) => { out += m.output; }, onStderr: (m) => { err += m.output; } },
  );
  assert.equal(first.stdout, 'hello\n');
  assert.equal(first.stderr, 'careful\n');
  assert.equal(first.error, undefined);
  assert.equal(out, 'hello\n');
  assert.equal(err, 'careful\n');
  const second = await sandbox.codeInterpreter.runCode('print(answer + 2)');
  assert.equal(second.stdout, '42\n');
  const env = await sandbox.codeInterpreter.runCode('import os\nprint(os.environ["GREETING"])', { envs: { GREETING: 'hi' } });
  assert.equal(env.stdout, 'hi\n');
});

await check('codeInterpreter: an exception is the result\'s error, with onError', async () => {
  let reported;
  const res = await sandbox.codeInterpreter.runCode('print("before")\n1 / 0', { onError: (e) => { reported = e; } });
  assert.equal(res.stdout, 'before\n');
  assert.equal(res.error.name, 'ZeroDivisionError');
  assert.equal(res.error.value, 'division by zero');
  assert.equal(res.error.traceback, 'Traceback (most recent call last):\n  File "<stdin>", line 2\nZeroDivisionError: division by zero\n');
  assert.deepEqual(reported, res.error);
});

await check('codeInterpreter: createContext, listContexts, deleteContext', async () => {
  const ctx = await sandbox.codeInterpreter.createContext();
  assert.ok(ctx.id, 'a context id');
  assert.equal(ctx.language, 'python');
  assert.equal(ctx.active, true);
  assert.equal(ctx.cwd, await sandbox.getWorkDir());
  await sandbox.codeInterpreter.runCode('only_here = 1', { context: ctx });
  const mine = await sandbox.codeInterpreter.runCode('print("only_here" in globals())', { context: ctx });
  assert.equal(mine.stdout, 'True\n');
  const shared = await sandbox.codeInterpreter.runCode('print("only_here" in globals())');
  assert.equal(shared.stdout, 'False\n', 'the default context is another one');
  const listed = (await sandbox.codeInterpreter.listContexts()).map((c) => c.id);
  assert.deepEqual(listed, [ctx.id], 'the default context is not listed');
  await sandbox.codeInterpreter.deleteContext(ctx);
  assert.deepEqual(await sandbox.codeInterpreter.listContexts(), []);
  await assert.rejects(
    sandbox.codeInterpreter.runCode('print(1)', { context: ctx }),
    /context not found.*close code 1008/,
  );
  await expectError(sandbox.codeInterpreter.deleteContext(ctx), DaytonaNotFoundError);
});

await check('codeInterpreter: a timeout interrupts the code and the context lives on', async () => {
  await sandbox.codeInterpreter.runCode('kept = "still here"');
  const t0 = Date.now();
  // The worker stops at the interrupt and says so: the SDK resolves on that.
  const interrupted = await sandbox.codeInterpreter.runCode('import time\nprint("sleeping")\ntime.sleep(30)', { timeout: 1 });
  assert.equal(interrupted.stdout, 'sleeping\n');
  assert.equal(interrupted.error, undefined);
  assert.ok(Date.now() - t0 < 10_000, 'stopped at the timeout');
  assert.equal((await sandbox.codeInterpreter.runCode('print(kept)')).stdout, 'still here\n');
  // Code deaf to the interrupt: the worker is killed after the grace, close 4008.
  const ctx = await sandbox.codeInterpreter.createContext();
  const deaf = 'import time\nwhile True:\n    try:\n        time.sleep(0.05)\n    except KeyboardInterrupt:\n        pass';
  await expectError(sandbox.codeInterpreter.runCode(deaf, { context: ctx, timeout: 1 }), DaytonaTimeoutError);
  const again = await sandbox.codeInterpreter.runCode('print("fresh worker")', { context: ctx });
  assert.equal(again.stdout, 'fresh worker\n');
  await sandbox.codeInterpreter.deleteContext(ctx);
});

await check('git: clone a local repository, status, add, commit', async () => {
  const repo = process.env.COMPAT_GIT_REPO;
  assert.ok(repo, 'COMPAT_GIT_REPO names the bare repository the Rust test made');
  await sandbox.git.clone(repo, 'repo');
  const status = await sandbox.git.status('repo');
  assert.equal(status.currentBranch, 'main');
  assert.deepEqual(status.fileStatus, []);
  const branches = await sandbox.git.branches('repo');
  assert.deepEqual(branches.branches, ['main']);
  await sandbox.fs.uploadFile(Buffer.from('new\n'), 'repo/new.txt');
  const dirty = await sandbox.git.status('repo');
  assert.deepEqual(dirty.fileStatus.map((f) => [f.name, f.worktree]), [['new.txt', 'Untracked']]);
  await sandbox.git.add('repo', ['new.txt']);
  const { sha } = await sandbox.git.commit('repo', 'add new.txt', 'Compat', 'compat@example.com');
  assert.match(sha, /^[0-9a-f]{40}$/);
  const after = await sandbox.git.status('repo');
  assert.equal(after.ahead, 1);
});

await check('git: clone of a missing repository → DaytonaGitRepoNotFoundError', async () => {
  await expectError(sandbox.git.clone(`/nonexistent/${run}.git`, 'nothing'), DaytonaGitRepoNotFoundError);
});

await check('preview link reaches a server started in the sandbox', async () => {
  const port = await freePort();
  await sandbox.fs.uploadFile(Buffer.from('hello from the sandbox'), 'site/index.txt');
  await sandbox.process.createSession('compat-web');
  await sandbox.process.executeSessionCommand('compat-web', {
    command: `cd site && exec python3 -m http.server ${port} --bind 127.0.0.1`,
    runAsync: true,
  });
  const link = await sandbox.getPreviewLink(port);
  assert.ok(link.url && link.token, 'url and token');
  let res;
  for (let i = 0; i < 150; i++) {
    res = await fetch(`${link.url}index.txt`, { headers: { 'X-Daytona-Preview-Token': link.token } });
    if (res.status !== 502) break;
    await res.arrayBuffer();
    await sleep(100);
  }
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'hello from the sandbox');
  const denied = await fetch(`${link.url}index.txt`);
  await denied.arrayBuffer();
  assert.equal(denied.status, 401, 'the preview token is required');
  const signed = await sandbox.getSignedPreviewUrl(port, 60);
  const viaSigned = await fetch(`${signed.url}index.txt`);
  assert.equal(viaSigned.status, 200);
  assert.equal(await viaSigned.text(), 'hello from the sandbox');
  await sandbox.process.deleteSession('compat-web');
});

await check('create from an image streams build logs', async () => {
  const chunks = [];
  const built = await daytona.create(
    { image: 'node:20-slim', labels: { suite: 'compat-build' } },
    { timeout: 60, onSnapshotCreateLogs: (chunk) => chunks.push(chunk) },
  );
  try {
    assert.equal(built.state, 'started');
    assert.ok(chunks.length > 0, 'onSnapshotCreateLogs was called');
    const text = chunks.join('\n');
    assert.match(text, /Step 1\/1 : FROM node:20-slim/);
    assert.match(text, /Successfully built/);
  } finally {
    await built.delete();
  }
});

await check('snapshots: create from an image, get, list, use, delete', async () => {
  const name = `compat-snap-${run}`;
  const states = [];
  const snap = await daytona.snapshot.create(
    { name, image: 'python:3.12-slim', resources: { cpu: 2, memory: 2, disk: 5 } },
    { onLogs: (line) => states.push(line) },
  );
  assert.equal(snap.state, 'active');
  assert.ok(states.some((l) => l.includes('active')), states.join(' | '));
  const got = await daytona.snapshot.get(name);
  assert.equal(got.id, snap.id);
  const page = await daytona.snapshot.list();
  assert.ok(page.items.some((s) => s.name === name));
  const fromSnap = await daytona.create({ snapshot: name }, { timeout: 60 });
  try {
    assert.equal(fromSnap.cpu, 2);
  } finally {
    await fromSnap.delete();
  }
  await daytona.snapshot.delete(snap);
  await expectError(daytona.snapshot.get(name), DaytonaNotFoundError);
});

await check('volumes: get-or-create, mount into a sandbox, delete', async () => {
  const name = `compat-vol-${run}`;
  await expectError(daytona.volume.get(name), DaytonaNotFoundError);
  const vol = await daytona.volume.get(name, true);
  assert.equal(vol.state, 'ready');
  const withVol = await daytona.create(
    { volumes: [{ volumeId: vol.id, mountPath: '/home/daytona/vol' }] },
    { timeout: 60 },
  );
  try {
    const wrote = await withVol.process.executeCommand('echo in-volume > ~/vol/x.txt && echo ok');
    assert.equal(wrote.result.trim(), 'ok');
    const back = await withVol.fs.downloadFile('vol/x.txt');
    assert.equal(back.toString(), 'in-volume\n');
  } finally {
    await withVol.delete();
  }
  await daytona.volume.delete(vol);
  const left = await daytona.volume.list();
  assert.ok(!left.some((v) => v.id === vol.id && v.state !== 'deleted'));
});

await check('missing sandbox → DaytonaNotFoundError', async () => {
  await expectError(daytona.get(`no-such-sandbox-${run}`), DaytonaNotFoundError);
});

await check('stop, start', async () => {
  await sandbox.stop();
  await sandbox.refreshData();
  assert.equal(sandbox.state, 'stopped');
  await sandbox.start();
  await sandbox.refreshData();
  assert.equal(sandbox.state, 'started');
  const res = await sandbox.process.executeCommand('echo back');
  assert.equal(res.result.trim(), 'back');
});

await check('archive, then start restores it', async () => {
  await sandbox.stop();
  await sandbox.archive();
  assert.equal(sandbox.state, 'archived');
  await sandbox.start();
  await sandbox.refreshData();
  assert.equal(sandbox.state, 'started');
  const res = await sandbox.process.executeCommand('cat site/index.txt');
  assert.equal(res.result, 'hello from the sandbox', 'files survive the archive');
});

await check('delete the python sandbox', async () => {
  assert.ok(pySandbox, 'the python sandbox was created');
  await pySandbox.delete();
  await expectError(daytona.get(pySandbox.id), DaytonaNotFoundError);
});

await check('delete, then get → not found', async () => {
  await sandbox.delete();
  await expectError(daytona.get(sandbox.id), DaytonaNotFoundError);
});

console.log(`compat: ${passed} passed, ${failed} failed`);
process.exitCode = failed === 0 ? 0 : 1;
