#!/usr/bin/env node
/**
 * A fake Firecracker binary for hosts without KVM: same command line, same
 * HTTP API on `--api-sock`, same answers (204 / 200 JSON / 400
 * `{"fault_message": ...}`), same rules (pre-boot-only endpoints, Paused
 * before /snapshot/create, /snapshot/load only on a fresh process...), every
 * request body checked against the official spec. No guest runs; instead:
 *
 * - /snapshot/create writes small JSON placeholders to `snapshot_path` and
 *   `mem_file_path`; /snapshot/load reads them back;
 * - /logger and /metrics write to their files or FIFOs (one metrics line per
 *   FlushMetrics);
 * - a configured vsock listens on `uds_path` after InstanceStart and bridges
 *   `CONNECT <port>` to the guest agent named by FAKE_FC_GUEST_AGENT;
 * - with FAKE_FC_GUEST_AGENT, InstanceStart prints the guest init's
 *   `tfc-init: start` marker on stdout (the serial console).
 *
 * Environment:
 *   FAKE_FC_REPORT             write the JSON report (every request, every violation) here,
 *                              after each request and on exit; `{id}` is replaced by the --id
 *                              (one report per VM when a driver spawns many); a host path, also
 *                              when jailed
 *   FAKE_FC_GUEST_AGENT        guest agent executable, run as `AGENT --unix <socket>` at boot
 *   FAKE_FC_GUEST_AGENT_PORT   its vsock port when the boot args carry no `tfc.agent_port=N` (default 1024)
 *   FAKE_FC_VERSION            version to claim (default 1.12.0)
 *   FAKE_FC_SPEC               spec file (default vendor/firecracker/firecracker.yaml beside the repo)
 *   FAKE_FC_SKIP_FILE_CHECKS=1 accept kernel/initrd/drive paths that do not exist
 *   FAKE_FC_CHROOT             set by fake-jailer.mjs: resolve every path inside this directory
 *
 * Exits 0 on SIGTERM/SIGINT, after SendCtrlAltDel, or when the guest agent
 * exits 0 (the guest shut down); 1 on bad arguments or an API socket in use.
 */
import http from 'node:http';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { LogMetrics } from './log-metrics.mjs';
import { hostPath } from './paths.mjs';
import { loadSpec } from './spec-validator.mjs';
import { Fault, FakeVmm } from './vmm-state.mjs';
import { VsockDevice } from './vsock.mjs';

const VERSION = process.env.FAKE_FC_VERSION || '1.12.0';
const VALUE_FLAGS = new Set([
  'api-sock',
  'id',
  'level',
  'log-path',
  'seccomp-filter',
  'config-file',
  'metadata',
  'module',
  'http-api-max-payload-size',
  'mmds-size-limit',
  'start-time-us',
  'start-time-cpu-us',
  'parent-cpu-time-us',
  'describe-snapshot',
]);
const BOOL_FLAGS = new Set(['version', 'help', 'show-level', 'show-log-origin', 'boot-timer', 'no-seccomp', 'no-api', 'snapshot-version', 'enable-pci']);

function fail(message) {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const opts = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const name = arg.startsWith('--') ? arg.slice(2).split('=')[0] : null;
    if (name && BOOL_FLAGS.has(name)) opts[name] = true;
    else if (name && VALUE_FLAGS.has(name)) {
      const inline = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : undefined;
      const value = inline ?? argv[++i];
      if (value === undefined) fail(`Arguments parsing error: Argument '${name}' requires a value.`);
      opts[name] = value;
    } else fail(`Arguments parsing error: Found argument '${arg}' which wasn't expected, or isn't valid in this context.`);
  }
  return opts;
}

const args = parseArgs(process.argv.slice(2));
if (args.version) {
  process.stdout.write(`Firecracker v${VERSION}\n`);
  process.exit(0);
}
if (args.help) {
  process.stdout.write('fake-firecracker: a test double for Firecracker; see test/fake-firecracker/README.md\n');
  process.exit(0);
}
if (args['config-file'] || args['no-api']) fail('fake-firecracker: --config-file/--no-api are not supported by the fake; configure the VM through the API.');

const apiSock = args['api-sock'] ?? '/run/firecracker.socket';
const instanceId = args.id ?? 'anonymous-instance';
const maxPayloadBytes = Number(args['http-api-max-payload-size'] ?? 51_200);
if (existsSync(hostPath(apiSock))) fail(`Error: Failed to open the API socket at: ${apiSock}. Check that it is not already used.`);

const spec = loadSpec();
// Started by the fake jailer as root: become the jail user now that every
// module and the spec are loaded from the checkout (see fake-jailer.mjs).
if (process.env.FAKE_FC_DROP_TO) {
  const [uid, gid] = process.env.FAKE_FC_DROP_TO.split(':').map(Number);
  process.setgroups([gid]);
  process.setgid(gid);
  process.setuid(uid);
  // The uid change cleared the parent-death signal setpriv armed: watch the parent instead.
  const parent = process.ppid;
  setInterval(() => process.ppid !== parent && process.exit(1), 200).unref();
}
const t0 = performance.now();
const reportPath = process.env.FAKE_FC_REPORT?.replaceAll('{id}', instanceId);
const report = {
  fake: 'fake-firecracker',
  version: VERSION,
  id: instanceId,
  apiSock,
  argv: process.argv.slice(2),
  pid: process.pid,
  startedAt: new Date().toISOString(),
  exit: null,
  requests: [],
  violations: [],
  events: [],
};
const lm = new LogMetrics({ id: instanceId, startupUs: Math.round(t0 * 1000), startupCpuUs: process.cpuUsage().user + process.cpuUsage().system });
let vsock = null;
let shuttingDown = false;
let exitAfterResponse = null;

function writeReport() {
  if (!reportPath) return;
  report.vmState = vmm.state;
  try {
    writeFileSync(`${reportPath}.tmp`, JSON.stringify(report, null, 2));
    renameSync(`${reportPath}.tmp`, reportPath);
  } catch (err) {
    process.stderr.write(`fake-firecracker: cannot write report ${reportPath}: ${err.message}\n`);
  }
}

function agentPortFrom(bootArgs) {
  const m = /(?:^|\s)tfc\.agent_port=(\d+)(?:\s|$)/.exec(bootArgs ?? '');
  return Number(m?.[1] ?? process.env.FAKE_FC_GUEST_AGENT_PORT ?? 1024);
}

const vmm = new FakeVmm({
  id: instanceId,
  vmmVersion: VERSION,
  mmdsSizeLimit: Number(args['mmds-size-limit'] ?? 51_200),
  checkFiles: process.env.FAKE_FC_SKIP_FILE_CHECKS !== '1',
  hooks: {
    async startDevices(config, guest) {
      if (!config.vsock) return;
      vsock = new VsockDevice({
        udsPath: hostPath(config.vsock.uds_path),
        agentPath: process.env.FAKE_FC_GUEST_AGENT || undefined,
        agentPort: guest.agentPort ?? agentPortFrom(config.bootSource?.boot_args),
        record: (event) => report.events.push({ atMs: +(performance.now() - t0).toFixed(3), ...event }),
        onAgentExit: (code) => {
          if (code === 0) void shutdown('guest shut down (agent exited 0)');
        },
      });
      try {
        await vsock.start();
      } catch (err) {
        throw new Fault(`Start microvm error: Cannot create backend for vsock device: ${err.message}`, 'vsock-backend');
      }
      guest.agentPort = vsock.agentPort;
    },
    guestStarted: () => {
      // The "guest" boots: its init prints the start marker on the serial
      // console (our stdout), shortly after InstanceStart was answered.
      if (process.env.FAKE_FC_GUEST_AGENT) setTimeout(() => process.stdout.write('tfc-init: start\n'), 5);
    },
    pause: () => vsock?.pause(),
    resume: () => vsock?.resume(),
    flushMetrics: () => lm.flush(),
    ctrlAltDel: () => {
      exitAfterResponse = 'SendCtrlAltDel';
    },
    configureLogger: (cfg) => wrapFault(() => lm.configureLogger(cfg), 'logger-config'),
    configureMetrics: (cfg) => wrapFault(() => lm.configureMetrics(cfg), 'metrics-config'),
  },
});
if (args.metadata) {
  try {
    vmm.mmds = JSON.parse(readFileSync(hostPath(args.metadata), 'utf8'));
  } catch (err) {
    fail(`MMDS error: metadata provided not valid json: ${err.message}`);
  }
}

function wrapFault(fn, rule) {
  try {
    fn();
  } catch (err) {
    throw new Fault(err.message, rule);
  }
}

const VALID_ID = /^[\p{L}\p{N}_]+$/u;

/** Turns one HTTP request into { status, body?, fault?, violations? }. */
async function dispatch(method, url, raw, entry) {
  const refuse = (message, violations, status = 400) => ({ status, fault: message, violations });
  if (raw.length > maxPayloadBytes) {
    return refuse(`Request payload with size ${raw.length} is larger than the limit of ${maxPayloadBytes} allowed by server.`, [
      { kind: 'rule', rule: 'payload-too-large' },
    ]);
  }
  let body;
  if (raw.length > 0) {
    try {
      body = JSON.parse(raw);
    } catch (err) {
      return refuse(`An error occurred when deserializing the json body of a request: ${err.message}.`, [{ kind: 'invalid-json' }]);
    }
  }
  entry.body = body;
  if (method === 'GET' && body !== undefined) return refuse('GET request cannot have a body.', [{ kind: 'rule', rule: 'get-with-body' }]);
  if (method === 'PUT' && body === undefined) return refuse('Empty PUT request.', [{ kind: 'missing-body' }]);
  if (method === 'PATCH' && body === undefined && !url.startsWith('/balloon/hinting/')) return refuse('Empty PATCH request.', [{ kind: 'missing-body' }]);
  let match;
  try {
    match = spec.findOperation(method, url);
  } catch {
    match = null; // undecodable %-escape in a path parameter
  }
  if (!match) return refuse(`Invalid request method and/or path: ${method} ${url}.`, [{ kind: 'unknown-operation' }]);
  const { operation, pathParams } = match;
  entry.operationId = operation.operationId;
  for (const value of Object.values(pathParams)) {
    if (value === '') return refuse('The ID cannot be empty.', [{ kind: 'rule', rule: 'invalid-id' }]);
    if (!VALID_ID.test(value))
      return refuse('API Resource IDs can only contain alphanumeric characters and underscores.', [{ kind: 'rule', rule: 'invalid-id' }]);
  }
  const violations = spec.validateRequest(method, url, body);
  if (violations.length) {
    return refuse(`An error occurred when deserializing the json body of a request: ${violations.map((v) => v.message).join('; ')}.`, violations);
  }
  const started = performance.now();
  try {
    const answer = await vmm.handle(operation.operationId, pathParams, body);
    const us = (performance.now() - started) * 1000;
    if (operation.operationId === 'loadSnapshot') lm.latency('load_snapshot', us);
    if (operation.operationId === 'createSnapshot') lm.latency(body.snapshot_type === 'Diff' ? 'diff_create_snapshot' : 'full_create_snapshot', us);
    if (operation.operationId === 'patchVm') lm.latency(body.state === 'Paused' ? 'pause_vm' : 'resume_vm', us);
    return answer;
  } catch (err) {
    if (err instanceof Fault) return refuse(err.message, [{ kind: 'rule', rule: err.rule }], err.status);
    process.stderr.write(`fake-firecracker: internal error on ${method} ${url}: ${err.stack}\n`);
    return refuse(`Internal error in the fake: ${err.message}`, [{ kind: 'fake-internal-error' }], 500);
  }
}

async function onRequest(req, res) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const raw = Buffer.concat(chunks).toString('utf8');
  const method = req.method ?? 'GET';
  const url = req.url ?? '/';
  const entry = {
    seq: report.requests.length + 1,
    atMs: +(performance.now() - t0).toFixed(3),
    method,
    path: url,
    operationId: null,
    body: undefined,
    status: 0,
  };
  report.requests.push(entry);
  const methodWord = method[0] + method.slice(1).toLowerCase();
  lm.log('Info', `The API server received a ${methodWord} request on "${url}"${raw ? ` with body ${JSON.stringify(raw)}` : ''}.`);

  const answer = shuttingDown ? { status: 503, fault: 'Firecracker is shutting down.' } : await dispatch(method, url, raw, entry);
  entry.status = answer.status;
  lm.countRequest(entry.operationId, answer.status >= 400);
  const headers = { Server: 'Firecracker API' };
  if (exitAfterResponse) {
    const reason = exitAfterResponse;
    res.once('finish', () => setImmediate(() => void shutdown(reason)));
  }
  if (answer.fault !== undefined) {
    entry.faultMessage = answer.fault;
    for (const v of answer.violations ?? []) {
      report.violations.push({ seq: entry.seq, method, path: url, operationId: entry.operationId, message: v.message ?? answer.fault, ...v });
    }
    lm.log('Error', `Received Error. Status code: ${answer.status}. Message: ${answer.fault}`);
  }
  // Written before answering, so a client that got the answer reads a report that has the request.
  writeReport();
  if (answer.fault !== undefined) {
    res.writeHead(answer.status, { ...headers, 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ fault_message: answer.fault }));
  } else if (answer.status === 204) {
    res.writeHead(204, headers);
    res.end();
  } else {
    res.writeHead(answer.status, { ...headers, 'Content-Type': 'application/json' });
    res.end(JSON.stringify(answer.body));
  }
}

const server = http.createServer((req, res) => {
  onRequest(req, res).catch((err) => {
    process.stderr.write(`fake-firecracker: ${err.stack}\n`);
    res.destroy();
  });
});
// Firecracker keeps API connections open for as long as the client wants.
server.keepAliveTimeout = 0;

async function shutdown(reason) {
  if (shuttingDown) return;
  shuttingDown = true;
  report.exit = { reason, atMs: +(performance.now() - t0).toFixed(3) };
  writeReport();
  await vsock?.stop();
  lm.close();
  server.closeAllConnections();
  server.close();
  writeReport();
  process.stdout.write('Firecracker exiting successfully. exit_code=0\n');
  process.exit(0);
}

process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
server.on('error', (err) => fail(`Error: Failed to open the API socket at: ${apiSock}: ${err.message}`));
server.listen(hostPath(apiSock), () => {
  process.stdout.write(`Running Firecracker v${VERSION}\n`);
  writeReport();
});
