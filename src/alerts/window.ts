/**
 * A bounded sliding window of timestamped samples: a ring that keeps the
 * newest `capacity` samples; queries look at those within the last
 * `windowMs`. Memory is fixed whatever the event rate.
 */
export class SampleWindow {
  private readonly times: Float64Array;
  private readonly values: Float64Array;
  private head = 0;
  private size = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`window capacity must be a positive integer, got ${capacity}`);
    this.times = new Float64Array(capacity);
    this.values = new Float64Array(capacity);
  }

  push(time: number, value: number): void {
    this.times[this.head] = time;
    this.values[this.head] = value;
    this.head = (this.head + 1) % this.capacity;
    this.size = Math.min(this.size + 1, this.capacity);
  }

  /** Values of samples with time > since, oldest first. */
  valuesSince(since: number): number[] {
    const out: number[] = [];
    const start = (this.head - this.size + this.capacity) % this.capacity;
    for (let i = 0; i < this.size; i++) {
      const j = (start + i) % this.capacity;
      if (this.times[j] > since) out.push(this.values[j]);
    }
    return out;
  }

  get length(): number {
    return this.size;
  }
}

/** The q-quantile (0..1) of `values` by the nearest-rank method; undefined for none. */
export function quantile(values: readonly number[], q: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1];
}
