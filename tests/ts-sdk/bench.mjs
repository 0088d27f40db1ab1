// The official Daytona TypeScript SDK's side of `cargo bench --bench daytona`.
//
// A long-lived worker: the Rust bench starts it once (so Node's start-up is never timed), then
// sends one JSON request per stdin line and reads one JSON answer per stdout line. Requests:
//
//   {"op":"setup"}                          create the sandbox the command batches run in
//   {"op":"flow","n":N,"command":C}         N × the streamed session flow (below)
//   {"op":"oneshot","n":N,"command":C}      N × process.executeCommand(C)
//   {"op":"create_first","command":C}       create a sandbox, time to C's first stdout, delete it
//   {"op":"teardown"}                       delete the setup sandbox
//   {"op":"quit"}                           answer, then exit
//
// Command batches answer {"ok":true,"lat_ms":[…],"cpu_us":U}: each command's wall time, and
// this process's user+system CPU time over the whole batch (process.cpuUsage(), all threads).
// A failure answers {"ok":false,"error":"…"}; the worker keeps serving.
//
// The streamed session flow is what an SDK user writes for live, split stdout and stderr:
// createSession, executeSessionCommand({runAsync: true}), getSessionCommandLogs with
// callbacks (WebSocket follow), getSessionCommand for the exit code, deleteSession.
import { createInterface } from 'node:readline';
import { Daytona } from '@daytonaio/sdk';

const apiUrl = process.env.DAYTONA_API_URL;
const apiKey = process.env.DAYTONA_API_KEY;
if (!apiUrl || !apiKey) {
  console.error('DAYTONA_API_URL and DAYTONA_API_KEY must be set');
  process.exit(2);
}

const daytona = new Daytona({ apiKey, apiUrl, target: 'us' });
const tag = `${process.pid}-${Date.now()}`;
let sandbox;
let sessionSeq = 0;

function expectEcho(command, out) {
  // The bench only sends `echo WORD` commands: check the output really arrived.
  const want = `${command.replace(/^echo /, '')}\n`;
  if (out !== want) {
    throw new Error(`expected stdout ${JSON.stringify(want)}, got ${JSON.stringify(out)}`);
  }
}

async function sessionFlow(sb, command, onFirst) {
  const sessionId = `bench-${tag}-${sessionSeq++}`;
  await sb.process.createSession(sessionId);
  const { cmdId } = await sb.process.executeSessionCommand(sessionId, { command, runAsync: true });
  let out = '';
  let err = '';
  await sb.process.getSessionCommandLogs(
    sessionId,
    cmdId,
    (chunk) => {
      if (onFirst && out === '') onFirst();
      out += chunk;
    },
    (chunk) => {
      err += chunk;
    },
  );
  const cmd = await sb.process.getSessionCommand(sessionId, cmdId);
  await sb.process.deleteSession(sessionId);
  if (cmd.exitCode !== 0) throw new Error(`exit code ${cmd.exitCode}, stderr ${JSON.stringify(err)}`);
  expectEcho(command, out);
}

async function oneShot(sb, command) {
  const res = await sb.process.executeCommand(command);
  if (res.exitCode !== 0) throw new Error(`exit code ${res.exitCode}`);
  expectEcho(command, res.result);
}

async function batch(n, one) {
  const lat = new Array(n);
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await one();
    lat[i] = Number(process.hrtime.bigint() - t0) / 1e6;
  }
  const cpu = process.cpuUsage(cpu0);
  return { ok: true, lat_ms: lat, cpu_us: cpu.user + cpu.system };
}

async function createFirst(command) {
  const t0 = process.hrtime.bigint();
  let firstMs;
  const sb = await daytona.create(
    { language: 'typescript', labels: { bench: 'create-first', run: tag } },
    { timeout: 120 },
  );
  try {
    await sessionFlow(sb, command, () => {
      firstMs = Number(process.hrtime.bigint() - t0) / 1e6;
    });
  } finally {
    await sb.delete();
  }
  if (firstMs === undefined) throw new Error('no stdout arrived');
  return { ok: true, first_ms: firstMs };
}

async function handle(req) {
  switch (req.op) {
    case 'setup':
      sandbox = await daytona.create(
        { language: 'typescript', labels: { bench: 'round-trip', run: tag } },
        { timeout: 120 },
      );
      return { ok: true, id: sandbox.id };
    case 'flow':
      return batch(req.n, () => sessionFlow(sandbox, req.command));
    case 'oneshot':
      return batch(req.n, () => oneShot(sandbox, req.command));
    case 'create_first':
      return createFirst(req.command);
    case 'teardown':
      if (sandbox) await sandbox.delete();
      sandbox = undefined;
      return { ok: true };
    case 'quit':
      return { ok: true, quit: true };
    default:
      throw new Error(`unknown op ${JSON.stringify(req.op)}`);
  }
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (!line.trim()) continue;
  let answer;
  try {
    answer = await handle(JSON.parse(line));
  } catch (err) {
    answer = { ok: false, error: String(err?.stack ?? err) };
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
  if (answer.quit) break;
}
process.exit(0);
