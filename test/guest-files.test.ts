import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Daemon } from '../src/daemon/index.js';
import { assertNothingLeft, jsonApi, scratchDir, startOneVmDaemon, testDataDir } from './helpers.js';

// Guest files beyond one request, end to end: REST -> daemon -> agent in a
// real VM (a clone from the pool): mkdir -p, upload, list, stat, rm -r, and
// the errors a user gets for paths that do not exist.
describe('guest files: list, stat, mkdir, remove in a real VM', () => {
  const dir = scratchDir();
  const auth = { authorization: 'Bearer test-token-0123456789' };
  let daemon: Daemon | undefined;
  let vmId = '';
  const api = jsonApi(() => daemon!.url, auth);
  const files = (route: string, query: Record<string, string>) => `/v1/vms/${vmId}/files${route}?${new URLSearchParams(query).toString()}`;

  beforeAll(async () => {
    ({ daemon, vmId } = await startOneVmDaemon(dir.path, 'test-token-0123456789'));
  });

  afterAll(async () => {
    await daemon?.close();
    dir.remove();
    await assertNothingLeft(testDataDir());
  });

  it('creates a tree with mkdir -p, uploads into it, lists and stats it, and removes it recursively', async () => {
    const made = await api('POST', `/v1/vms/${vmId}/files/mkdir`, { path: '/work/proj/src', parents: true, mode: '750' });
    expect(made.status, JSON.stringify(made.json)).toBe(200);
    expect(made.json).toEqual({ path: '/work/proj/src', created: true });
    expect((await api('POST', `/v1/vms/${vmId}/files/mkdir`, { path: '/work/proj/src', parents: true })).json.created).toBe(false);

    const put = await fetch(`${daemon!.url}${files('', { path: '/work/proj/src/main.py' })}`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/octet-stream' },
      body: Buffer.from('print(1)\n'),
    });
    expect(put.status).toBe(204);
    // A symlink out of the tree and a name that is not UTF-8, made by the guest itself.
    const exec = await api('POST', `/v1/vms/${vmId}/exec`, {
      cmd: ['sh', '-c', 'mkdir -p /keep && echo precious > /keep/f && ln -s /keep /work/proj/link && printf x > "$(printf "/work/proj/a\\377b")"'],
    });
    expect(exec.json.exit_code, JSON.stringify(exec.json)).toBe(0);

    const list = await api('GET', files('/list', { path: '/work/proj' }));
    expect(list.status, JSON.stringify(list.json)).toBe(200);
    expect(list.json.truncated).toBe(false);
    expect(list.json.entries.map((e: { name: string; type: string }) => [e.name, e.type])).toEqual([
      ['a\ufffdb', 'file'],
      ['link', 'symlink'],
      ['src', 'dir'],
    ]);
    expect(Buffer.from(list.json.entries[0].name_b64, 'base64')).toEqual(Buffer.from([0x61, 0xff, 0x62]));
    expect(list.json.entries[2].mode).toBe(0o750);

    const inner = await api('GET', files('/list', { path: '/work/proj/src' }));
    expect(inner.json.entries).toEqual([{ name: 'main.py', type: 'file', size: 9, mode: 0o644, mtime_ms: expect.any(Number) }]);
    // The guest clock is set on restore: the file is from this run, not from 1970.
    expect(Math.abs(inner.json.entries[0].mtime_ms - Date.now())).toBeLessThan(10 * 60_000);

    const stat = await api('GET', files('/stat', { path: '/work/proj/src/main.py' }));
    expect(stat.json).toMatchObject({ path: '/work/proj/src/main.py', type: 'file', size: 9, uid: 0, gid: 0, symlink_target: null });
    expect((await api('GET', files('/stat', { path: '/work/proj/link' }))).json).toMatchObject({ type: 'symlink', symlink_target: '/keep' });

    const notEmpty = await api('DELETE', files('', { path: '/work' }));
    expect(notEmpty.status).toBe(502);
    expect(notEmpty.json.error).toMatchObject({ code: 'AGENT_ERROR', details: { agent_code: 'FILE_ERROR' } });
    const rm = await api('DELETE', files('', { path: '/work', recursive: 'true' }));
    expect(rm.status, JSON.stringify(rm.json)).toBe(200);
    expect(rm.json).toEqual({ path: '/work', removed: 6 });
    // The link was removed, not followed.
    const kept = await api('POST', `/v1/vms/${vmId}/exec`, { cmd: ['sh', '-c', 'cat /keep/f; ls -d /work 2>&1 || true'] });
    expect(kept.json.stdout).toMatch(/^precious\n.*No such file or directory/);
  });

  it('answers missing paths and the root with the agent code, in the error envelope', async () => {
    for (const [method, path] of [
      ['GET', files('/list', { path: '/no/such/dir' })],
      ['GET', files('/stat', { path: '/no/such/file' })],
      ['DELETE', files('', { path: '/no/such/file' })],
    ] as const) {
      const r = await api(method, path);
      expect(r.status, path).toBe(502);
      expect(r.json.error).toMatchObject({ code: 'AGENT_ERROR', details: { agent_code: 'FILE_NOT_FOUND' } });
    }
    const noParent = await api('POST', `/v1/vms/${vmId}/files/mkdir`, { path: '/no/such/dir' });
    expect(noParent.json.error.details.agent_code).toBe('FILE_NOT_FOUND');
    await api('POST', `/v1/vms/${vmId}/files/mkdir`, { path: '/twice' });
    expect((await api('POST', `/v1/vms/${vmId}/files/mkdir`, { path: '/twice' })).json.error.details.agent_code).toBe('FILE_EXISTS');
    const root = await api('DELETE', files('', { path: '/', recursive: 'true' }));
    expect(root.json.error).toMatchObject({ code: 'AGENT_ERROR', details: { agent_code: 'BAD_REQUEST' } });
    expect(root.json.error.message).toMatch(/refusing to remove the root directory/);
    // The guest still works after all that.
    expect((await api('POST', `/v1/vms/${vmId}/exec`, { cmd: ['ls', '/bin/sh'] })).json.exit_code).toBe(0);
  });
});
