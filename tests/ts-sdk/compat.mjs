// Drives the official Daytona TypeScript SDK against daytona-emulator.
//
// Run by `tests/ts_sdk_compat.rs`, which starts the emulator and passes its URL and key in
// DAYTONA_API_URL / DAYTONA_API_KEY. Every check prints one line; the last line is the tally.
// The process must exit on its own soon after the tally (no socket.io or timer keeps it alive).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  Daytona,
  DaytonaNotFoundError,
  DaytonaTimeoutError,
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

await check('delete, then get → not found', async () => {
  await sandbox.delete();
  await expectError(daytona.get(sandbox.id), DaytonaNotFoundError);
});

console.log(`compat: ${passed} passed, ${failed} failed`);
process.exitCode = failed === 0 ? 0 : 1;
