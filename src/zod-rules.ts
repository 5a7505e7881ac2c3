// Small zod helpers shared by the config schema (schema.ts) and the
// [cluster] table (cluster/config.ts). Imports nothing of the project (a root
// module, like package-root.ts), so
// both can use it without an import cycle.
import * as z from 'zod';

/** An integer from `min` to `max`, with the allowed range in every error message of the field. */
export function intIn(min: number, max: number) {
  return z
    .number({ error: `must be an integer from ${min} to ${max}` })
    .int()
    .min(min)
    .max(max);
}
