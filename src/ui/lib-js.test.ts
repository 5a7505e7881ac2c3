import { transform } from 'esbuild';
import { beforeAll, describe, expect, it } from 'vitest';
import { UI_APP_JS, UI_LIB_JS, UI_VIEW_JS } from './index.js';

interface SseEvent {
  id: string;
  type: string;
  data: string;
}
interface Lib {
  MAX_SSE_BUFFER: number;
  SseParser: new (maxBuffer?: number) => { push(text: string): SseEvent[]; lastEventId: string; retryMs: number | null };
  decodeEvent(e: SseEvent): { id: string; type: string; time: string; data: Record<string, unknown> } | null;
  percentile(values: number[], p: number): number | null;
  pushBounded<T>(list: T[], item: T, max: number): T[];
  latencyStats(values: number[]): { count: number; last: number | null; p50: number | null; p99: number | null; max: number | null };
  sparklinePoints(values: number[], width: number, height: number): string;
  backoffMs(attempt: number, baseMs?: number, maxMs?: number, random?: () => number): number;
  formatMs(ms: unknown): string;
}

// The browser's helpers, loaded from the very text /ui/lib.js serves.
let lib: Lib;
beforeAll(async () => {
  lib = (await import(/* @vite-ignore */ `data:text/javascript;base64,${Buffer.from(UI_LIB_JS).toString('base64')}`)) as Lib;
});

/** Feeds the text to a fresh parser in pieces of `size` characters; all events in order. */
function parseInPieces(text: string, size: number): { events: SseEvent[]; lastEventId: string; retryMs: number | null } {
  const parser = new lib.SseParser();
  const events: SseEvent[] = [];
  for (let i = 0; i < text.length; i += size) events.push(...parser.push(text.slice(i, i + size)));
  return { events, lastEventId: parser.lastEventId, retryMs: parser.retryMs };
}

describe('SseParser', () => {
  const stream =
    ': heartbeat\n\n' +
    'id: 1\nevent: allocation\ndata: {"id":1,"type":"allocation","data":{"ms":4.2}}\n\n' +
    'id: 2\r\nevent: pool\r\ndata: {"a":\r\ndata:1}\r\n\r\n' +
    'retry: 2500\rid: 3\revent: gap\rdata:{"missed":7}\r\r' +
    'data: no id or type\n\n';

  it('parses events whatever the line endings and wherever the chunks are cut', () => {
    const expected = [
      { id: '1', type: 'allocation', data: '{"id":1,"type":"allocation","data":{"ms":4.2}}' },
      { id: '2', type: 'pool', data: '{"a":\n1}' },
      { id: '3', type: 'gap', data: '{"missed":7}' },
      // The id persists (the one to resume from); the type does not.
      { id: '3', type: 'message', data: 'no id or type' },
    ];
    for (const size of [1, 2, 3, 7, 64, stream.length]) {
      const got = parseInPieces(stream, size);
      expect(got.events, `pieces of ${size}`).toEqual(expected);
      expect(got.lastEventId).toBe('3');
      expect(got.retryMs).toBe(2500);
    }
  });

  it('holds an event back until its blank line, and ignores empty events and unknown fields', () => {
    const parser = new lib.SseParser();
    expect(parser.push('id: 9\nevent: pool\ndata: {}\n')).toEqual([]);
    expect(parser.push('\n')).toEqual([{ id: '9', type: 'pool', data: '{}' }]);
    expect(parser.push('event: x\nfoo: bar\nid\n\n')).toEqual([]);
    expect(parser.lastEventId).toBe('');
    expect(parser.push('retry: soon\ndata\n\n')).toEqual([{ id: '', type: 'message', data: '' }]);
    expect(parser.retryMs).toBeNull();
  });

  it('refuses a line or an event larger than its bound instead of growing', () => {
    expect(() => new lib.SseParser(100).push('data: ' + 'x'.repeat(200))).toThrow(RangeError);
    const parser = new lib.SseParser(100);
    expect(() => {
      for (let i = 0; i < 20; i++) parser.push('data: ' + 'y'.repeat(20) + '\n');
    }).toThrow(/larger than 100/);
    expect(lib.MAX_SSE_BUFFER).toBe(1 << 20);
  });
});

describe('decodeEvent', () => {
  it('takes the envelope of a daemon event and rejects anything else', () => {
    const data = JSON.stringify({ id: 5, type: 'allocation', time: '2026-12-01T00:00:00.000Z', data: { pool: 'p', vm_id: 'vm-1', ms: 3 } });
    expect(lib.decodeEvent({ id: '5', type: 'allocation', data })).toEqual({
      id: '5',
      type: 'allocation',
      time: '2026-12-01T00:00:00.000Z',
      data: { pool: 'p', vm_id: 'vm-1', ms: 3 },
    });
    expect(lib.decodeEvent({ id: '6', type: 'gap', data: '{"missed":3}' })).toEqual({ id: '6', type: 'gap', time: '', data: {} });
    for (const bad of ['not json', '[1,2]', 'null', '7']) expect(lib.decodeEvent({ id: '', type: 'x', data: bad }), bad).toBeNull();
  });
});

describe('latency helpers', () => {
  it('computes nearest-rank percentiles', () => {
    const values = Array.from({ length: 100 }, (_, i) => 100 - i); // 100 .. 1, unsorted on purpose
    expect(lib.percentile(values, 50)).toBe(50);
    expect(lib.percentile(values, 99)).toBe(99);
    expect(lib.percentile(values, 100)).toBe(100);
    expect(lib.percentile([7], 99)).toBe(7);
    expect(lib.percentile([3, 1, 2], 50)).toBe(2);
    expect(lib.percentile([], 50)).toBeNull();
    expect(lib.percentile([1, Number.NaN, 3], 100)).toBe(3);
    expect(() => lib.percentile([1], 0)).toThrow(RangeError);
    expect(() => lib.percentile([1], 101)).toThrow(RangeError);
    expect(values[0]).toBe(100); // the input is not sorted in place
  });

  it('keeps a bounded list of the newest entries and summarises it', () => {
    const list: number[] = [];
    for (let i = 1; i <= 250; i++) lib.pushBounded(list, i, 200);
    expect(list.length).toBe(200);
    expect([list[0], list.at(-1)]).toEqual([51, 250]);
    expect(lib.latencyStats(list)).toEqual({ count: 200, last: 250, p50: 150, p99: 248, max: 250 });
    expect(lib.latencyStats([])).toEqual({ count: 0, last: null, p50: null, p99: null, max: null });
  });

  it('draws a sparkline inside its box, zero at the bottom and the maximum at the top', () => {
    expect(lib.sparklinePoints([], 100, 20)).toBe('');
    const points = lib
      .sparklinePoints([0, 5, 10], 100, 22)
      .split(' ')
      .map((p) => p.split(',').map(Number));
    expect(points).toEqual([
      [1, 21],
      [50, 11],
      [99, 1],
    ]);
    const flat = lib.sparklinePoints([4], 50, 10).split(' ');
    expect(flat).toEqual(['1,1', '49,1']);
  });

  it('backs off exponentially with a cap and bounded jitter', () => {
    const none = () => 0;
    expect([0, 1, 2, 3, 10, 1000].map((a) => lib.backoffMs(a, 1000, 30_000, none))).toEqual([1000, 2000, 4000, 8000, 30_000, 30_000]);
    expect(lib.backoffMs(2, 1000, 30_000, () => 0.999)).toBe(2002);
  });

  it('formats durations for people', () => {
    expect([0.4242, 12.34, 734.4, 2140, undefined, Number.NaN].map((v) => lib.formatMs(v))).toEqual(['0.42 ms', '12.3 ms', '734 ms', '2.14 s', '-', '-']);
  });
});

describe('the page modules', () => {
  it('are valid ES modules that import only names their neighbours export', async () => {
    const modules: Record<string, string> = { 'app.js': UI_APP_JS, 'view.js': UI_VIEW_JS, 'lib.js': UI_LIB_JS };
    const exported = (text: string) => [...text.matchAll(/^export (?:async )?(?:function|const|class|let) ([\w$]+)/gm)].map((m) => m[1]);
    expect(exported(UI_LIB_JS).sort()).toEqual(Object.keys(lib).sort());
    let imports = 0;
    for (const [name, text] of Object.entries(modules)) {
      await expect(transform(text, { loader: 'js', format: 'esm' }), name).resolves.toBeDefined();
      for (const m of text.matchAll(/^import \{([^}]+)\} from '\.\/([\w.-]+)';$/gm)) {
        expect(Object.keys(modules), `${name} imports ${m[2]}`).toContain(m[2]);
        for (const imported of m[1].split(',').map((n) => n.trim())) {
          imports++;
          expect(exported(modules[m[2]]), `${name} imports ${imported} from ${m[2]}`).toContain(imported);
        }
      }
    }
    expect(imports).toBeGreaterThan(10);
  });
});
