import { chownSync, createReadStream, createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { QmpError, QmpTimeoutError } from '../../errors/index.js';
import type { QmpClient } from './qmp-client.js';

/**
 * QEMU snapshots as migration streams over a Unix socket that this process
 * serves or connects to (no `exec:` URIs: those make QEMU run a shell, which
 * its sandbox's spawn=deny forbids).
 * With `x-ignore-shared`, RAM in a shared memory-backend-file is not sent:
 * the stream is device state only (tens of KB), and clones map the RAM file
 * copy-on-write.
 */

interface MigrationStatus {
  status?: string;
  'error-desc'?: string;
}

async function setIgnoreShared(qmp: QmpClient, state = true): Promise<void> {
  await qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'x-ignore-shared', state }] });
}

async function waitForMigration(qmp: QmpClient, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await qmp.execute<MigrationStatus>('query-migrate');
    if (info.status === 'completed') return;
    if (info.status === 'failed' || info.status === 'cancelled') {
      throw new QmpError(`${what} ${info.status}: ${info['error-desc'] ?? 'no reason given by QEMU'}`);
    }
    if (Date.now() > deadline) throw new QmpTimeoutError(`${what} did not complete within ${timeoutMs} ms (status ${info.status ?? 'none'})`);
    await delay(2);
  }
}

/** Where the outgoing migration socket goes: `name` in `dir`, QEMU's working directory; `owner` may connect (QEMU's uid). */
export interface MigrationSocket {
  dir: string;
  name: string;
  owner: { uid: number; gid: number } | null;
}

/**
 * Saves the device state of a paused VM to `statePath`, through a Unix
 * socket that exists only during the call. QEMU is given the socket's name
 * relative to its working directory, so an unprivileged QEMU needs no access
 * to the directories above its run dir. Throws QmpError when QEMU reports
 * the migration failed.
 */
export async function saveState(
  qmp: QmpClient,
  socket: MigrationSocket,
  statePath: string,
  timeoutMs = 60_000,
  options: { ignoreShared?: boolean } = {},
): Promise<void> {
  const socketPath = join(socket.dir, socket.name);
  await setIgnoreShared(qmp, options.ignoreShared ?? true);
  const server = createServer();
  const received = new Promise<void>((resolve, reject) => {
    server.once('connection', (socket: Socket) => {
      pipeline(socket, createWriteStream(statePath)).then(resolve, reject);
    });
    server.once('error', reject);
  });
  // Awaited below; handled now so a write failure before QEMU finishes is not an unhandled rejection.
  received.catch(() => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  try {
    if (socket.owner) chownSync(socketPath, socket.owner.uid, socket.owner.gid);
    await qmp.execute('migrate', { uri: `unix:${socket.name}` });
    await waitForMigration(qmp, timeoutMs, 'snapshot (migration to file)');
    await received;
  } finally {
    server.close();
  }
}

/**
 * Feeds `statePath` into a QEMU started with `-incoming unix:...`, through
 * the Unix socket it listens on at `socketPath` (made at start-up, before
 * QEMU dropped privileges). The capability is set before connecting: QEMU
 * reads nothing until a connection arrives. Resolves once QEMU reports the
 * incoming migration completed (the VM is then paused, as -S asks).
 */
export async function loadState(qmp: QmpClient, socketPath: string, statePath: string, timeoutMs = 60_000): Promise<void> {
  await setIgnoreShared(qmp);
  const socket = await connectWithRetry(socketPath, timeoutMs);
  // The state is device state only (tens of KB). QEMU may close its end as
  // soon as it has read the stream, before our side finishes; whether the
  // load worked is decided by QEMU's migration status, not by the socket.
  const state = await readFile(statePath);
  await new Promise<void>((resolve) => {
    socket.once('error', () => resolve());
    socket.once('close', () => resolve());
    socket.end(state);
  });
  await waitForMigration(qmp, timeoutMs, 'snapshot restore (incoming migration)');
}

async function connectWithRetry(path: string, timeoutMs: number): Promise<Socket> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const s = connect(path);
        s.once('connect', () => {
          s.off('error', reject);
          resolve(s);
        });
        s.once('error', reject);
      });
    } catch (err) {
      if (Date.now() > deadline) throw new QmpTimeoutError(`QEMU did not listen for the snapshot on ${path} within ${timeoutMs} ms`, { cause: err });
      await delay(2);
    }
  }
}

/**
 * Feeds a full migration stream (device state and all guest RAM: a
 * snapshot of a running VM, saveState with ignoreShared false) into a QEMU
 * started with `-incoming`, streamed from the file (it may be as large as
 * the guest's RAM; it is never held in memory whole). Resolves once QEMU
 * reports the incoming migration completed.
 */
export async function loadFullState(qmp: QmpClient, socketPath: string, statePath: string, timeoutMs = 120_000): Promise<void> {
  await setIgnoreShared(qmp, false);
  const socket = await connectWithRetry(socketPath, timeoutMs);
  // QEMU may close its end once it has read the stream; QEMU's status decides.
  await pipeline(createReadStream(statePath), socket).catch(() => undefined);
  await waitForMigration(qmp, timeoutMs, 'snapshot restore (incoming migration with RAM)');
}
