#!/usr/bin/env node
/**
 * A fake of Firecracker's jailer for hosts without one (and for tests that
 * must not create real cgroups or mount namespaces). It takes the jailer's
 * documented command line (docs/jailer.md "Jailer Usage"), validates it as
 * the jailer does, creates `<chroot_base>/<exec_file_name>/<id>/root`,
 * copies the exec file into it, chowns the root to uid:gid, clears the
 * environment, and runs the exec file with `--id=<id> --start-time-us=N
 * --start-time-cpu-us=N` plus the arguments after `--`, in the root
 * directory, as uid:gid when it runs as root.
 *
 * Like the real jailer, nothing runs as the jail user before the code is
 * in hand: the real one copies the exec file into the chroot as root and
 * execs that copy after dropping privileges. The fake Firecracker is a Node
 * script whose modules, dependencies and spec live in the checkout (which
 * may sit in a 0700 directory the jail user cannot enter), so it is started
 * as root with FAKE_FC_DROP_TO=uid:gid and drops to that user itself once
 * its code and spec are loaded, before it opens anything in the jail.
 *
 * What it does not do: pivot_root/chroot, mknod /dev/kvm and /dev/net/tun,
 * join cgroups (it only records the directories and values it would write),
 * setns into --netns (it only checks the path opens), setrlimit, and exec
 * (it stays the parent of the exec file, forwarding SIGTERM/SIGINT and
 * exiting with its status). The exec file runs from its original path (the
 * fake Firecracker is a Node script whose modules are beside it) with
 * FAKE_FC_CHROOT set, so it resolves every path inside the root exactly as
 * a jailed Firecracker would.
 *
 * Environment (read before it is cleared; FAKE_FC_* variables are passed on):
 *   FAKE_JAILER_REPORT  write a JSON report of what the jailer did and would do here (`{id}` = the --id)
 */
import { spawn } from 'node:child_process';
import { chownSync, copyFileSync, existsSync, mkdirSync, openSync, closeSync, statSync, writeFileSync } from 'node:fs';
import { basename, isAbsolute, join, resolve } from 'node:path';

const VALUE_FLAGS = new Set([
  'id',
  'exec-file',
  'uid',
  'gid',
  'parent-cgroup',
  'cgroup-version',
  'cgroup',
  'chroot-base-dir',
  'netns',
  'resource-limit',
  'node',
]);
const MULTI = new Set(['cgroup', 'resource-limit']);
const BOOL_FLAGS = new Set(['daemonize', 'new-pid-ns', 'version', 'help']);
const VERSION = process.env.FAKE_FC_VERSION || '1.12.0';

function fail(message) {
  process.stderr.write(`Jailer error: ${message}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const opts = { cgroup: [], 'resource-limit': [] };
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      i++;
      break;
    }
    const name = arg.startsWith('--') ? arg.slice(2).split('=')[0] : null;
    if (name && BOOL_FLAGS.has(name)) opts[name] = true;
    else if (name && VALUE_FLAGS.has(name)) {
      const value = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : argv[++i];
      if (value === undefined) fail(`Arguments parsing error: Argument '${name}' requires a value.`);
      if (MULTI.has(name)) opts[name].push(value);
      else if (opts[name] !== undefined) fail(`Arguments parsing error: The argument '${name}' was provided more than once.`);
      else opts[name] = value;
    } else fail(`Arguments parsing error: Found argument '${arg}' which wasn't expected, or isn't valid in this context.`);
  }
  return { opts, extra: argv.slice(i) };
}

const { opts, extra } = parseArgs(process.argv.slice(2));
if (opts.version) {
  process.stdout.write(`Jailer v${VERSION}\n`);
  process.exit(0);
}
if (opts.help) {
  process.stdout.write('fake-jailer: a test double for the Firecracker jailer; see test/fake-firecracker/README.md\n');
  process.exit(0);
}
for (const required of ['id', 'exec-file', 'uid', 'gid']) {
  if (opts[required] === undefined) fail(`Arguments parsing error: Argument '${required}' required, but not found.`);
}
const id = opts.id;
if (!/^[A-Za-z0-9-]{1,64}$/.test(id)) fail(`Invalid instance ID: ${id}: it may contain alphanumeric characters and hyphens, at most 64.`);
const uid = Number(opts.uid);
const gid = Number(opts.gid);
if (!/^\d+$/.test(opts.uid) || uid > 4294967294) fail(`Invalid uid: ${opts.uid}`);
if (!/^\d+$/.test(opts.gid) || gid > 4294967294) fail(`Invalid gid: ${opts.gid}`);
const execFile = resolve(opts['exec-file']);
if (!existsSync(execFile) || !statSync(execFile).isFile()) fail(`Failed to canonicalize path ${opts['exec-file']}: No such file or directory (os error 2)`);
const execName = basename(execFile);
if (!execName.includes('firecracker')) fail(`Invalid filename. The filename of the --exec-file option must contain "firecracker": ${execName}`);
const cgroupVersion = opts['cgroup-version'] ?? '1';
if (cgroupVersion !== '1' && cgroupVersion !== '2') fail(`Cgroup version ${cgroupVersion} is not supported; use 1 or 2.`);
const cgroups = opts.cgroup.map((c) => {
  const m = /^([a-z][a-z0-9_]*)\.([a-z0-9_.]+)=(.+)$/.exec(c);
  if (!m) fail(`Invalid format for cgroups: ${c}`);
  return { controller: m[1], file: `${m[1]}.${m[2]}`, value: m[3] };
});
for (const r of opts['resource-limit']) {
  if (!/^(fsize|no-file)=\d+$/.test(r)) fail(`Invalid resource argument: ${r}`);
}
const parent = opts['parent-cgroup'] ?? execName;
if (isAbsolute(parent) || parent.split('/').includes('..')) fail(`Invalid parent cgroup: ${parent}`);
if (opts.netns !== undefined) {
  try {
    closeSync(openSync(opts.netns, 'r'));
  } catch (err) {
    fail(`Failed to open the network namespace ${opts.netns}: ${err.message}`);
  }
}

const chrootBase = resolve(opts['chroot-base-dir'] ?? '/srv/jailer');
const root = join(chrootBase, execName, id, 'root');
mkdirSync(root, { recursive: true });
copyFileSync(execFile, join(root, execName));
const asRoot = process.getuid?.() === 0;
if (asRoot) chownSync(root, uid, gid);

const report = {
  fake: 'fake-jailer',
  argv: process.argv.slice(2),
  pid: process.pid,
  id,
  execFile,
  chroot: root,
  uid,
  gid,
  cgroupVersion: Number(cgroupVersion),
  // Where the jailer would create the VM's cgroup and what it would write (not done here).
  cgroups: cgroups.map((c) => ({ dir: join('<cgroup_base>', parent, id), file: c.file, value: c.value })),
  resourceLimits: opts['resource-limit'],
  netns: opts.netns ?? null,
  daemonize: !!opts.daemonize,
  newPidNs: !!opts['new-pid-ns'],
  firecrackerArgs: null,
  childPid: null,
  exit: null,
};
const reportPath = process.env.FAKE_JAILER_REPORT?.replaceAll('{id}', id);
const writeReport = () => reportPath && writeFileSync(reportPath, JSON.stringify(report, null, 2));

// The jailer clears the environment; the fake keeps only its own knobs.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('FAKE_FC_')));
env.FAKE_FC_CHROOT = root;
env.PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const nowUs = Math.round(performance.timeOrigin * 1000 + performance.now() * 1000);
const fcArgs = [`--id=${id}`, `--start-time-us=${nowUs}`, `--start-time-cpu-us=${Math.round(process.cpuUsage().user)}`, ...extra];
report.firecrackerArgs = fcArgs;
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));
const argv = [process.execPath, execFile, ...fcArgs];
const [cmd, ...rest] = SETPRIV ? [SETPRIV, '--pdeathsig', 'SIGKILL', '--', ...argv] : argv;
if (asRoot && (uid !== 0 || gid !== 0)) env.FAKE_FC_DROP_TO = `${uid}:${gid}`;
const child = spawn(cmd, rest, {
  cwd: root,
  env,
  stdio: opts.daemonize ? 'ignore' : 'inherit',
});
report.childPid = child.pid ?? null;
writeReport();
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => child.kill(sig));
child.on('error', (err) => fail(`Failed to exec into ${execName}: ${err.message}`));
child.on('exit', (code, signal) => {
  report.exit = { code, signal };
  writeReport();
  process.exit(code ?? 128);
});
