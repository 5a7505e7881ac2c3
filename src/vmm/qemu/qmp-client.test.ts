import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { findExecutable, spawnSupervised, type SupervisedChild } from '../../process/index.js';
import { QmpClient } from './qmp-client.js';
import { QmpLineDecoder, encodeQmpCommand } from './qmp-framing.js';

describe('QMP framing', () => {
  it('splits messages across arbitrary chunks', () => {
    const d = new QmpLineDecoder();
    expect(d.push('{"return": {}, "id"')).toEqual([]);
    expect(d.push(': "a"}\r\n{"event": "STOP", "data": {}}\r\n{"ret')).toEqual([
      { return: {}, id: 'a' },
      { event: 'STOP', data: {} },
    ]);
    expect(d.push('urn": 1}\r\n')).toEqual([{ return: 1 }]);
  });
  it('rejects a line that is not a JSON object', () => {
    expect(() => new QmpLineDecoder().push('[1,2]\n')).toThrow(/not a JSON object/);
    expect(() => new QmpLineDecoder().push('{nope\n')).toThrow(SyntaxError);
  });
  it('encodes commands with ids and optional arguments', () => {
    expect(encodeQmpCommand('stop', 'x')).toBe('{"execute":"stop","id":"x"}\r\n');
    expect(JSON.parse(encodeQmpCommand('migrate', 'y', { uri: 'exec:cat' }))).toEqual({
      execute: 'migrate',
      arguments: { uri: 'exec:cat' },
      id: 'y',
    });
  });
});

const qemu = findExecutable('qemu-system-x86_64');

describe.skipIf(!qemu)('QMP client against a real QEMU (machine none)', () => {
  let dir = '';
  let child: SupervisedChild | undefined;
  afterEach(async () => {
    await child?.terminate(1000);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('negotiates, runs commands, maps errors and sees events', async () => {
    dir = mkdtempSync(join(tmpdir(), 'tfc-qmp-'));
    const sock = join(dir, 'qmp.sock');
    child = await spawnSupervised('qemu-system-x86_64', ['-M', 'none', '-nodefaults', '-display', 'none', '-qmp', `unix:${sock},server=on,wait=off`]);
    const qmp = await QmpClient.connect(sock, { timeoutMs: 10_000 });
    const version = await qmp.execute<{ qemu: { major: number } }>('query-version');
    expect(version.qemu.major).toBeGreaterThanOrEqual(7);
    await expect(qmp.execute('no-such-command')).rejects.toMatchObject({ code: 'QMP_ERROR', message: /CommandNotFound/ });
    const shutdown = qmp.waitForEvent('SHUTDOWN', 5000);
    await qmp.execute('quit');
    await expect(shutdown).resolves.toMatchObject({ event: 'SHUTDOWN' });
    await child.wait();
    await expect(qmp.execute('query-status')).rejects.toMatchObject({ code: 'QMP_ERROR' });
  });

  it('times out when nothing listens', async () => {
    dir = mkdtempSync(join(tmpdir(), 'tfc-qmp-'));
    await expect(QmpClient.connect(join(dir, 'absent.sock'), { timeoutMs: 100 })).rejects.toMatchObject({ code: 'QMP_TIMEOUT' });
  });
});
