import { timingSafeEqual } from 'node:crypto';
import { UnauthorizedError } from '../errors/index.js';

/** Checks an Authorization header against the token in constant time. Throws UnauthorizedError. */
export function checkBearer(header: string | undefined, token: string): void {
  const given = /^Bearer\s+(\S+)$/i.exec(header ?? '')?.[1];
  const a = Buffer.from(given ?? '');
  const b = Buffer.from(token);
  if (!given || a.length !== b.length || !timingSafeEqual(a, b)) {
    throw new UnauthorizedError(
      'missing or wrong bearer token; send "Authorization: Bearer TOKEN" with the token from TFC_TOKEN or the token file `tfc serve` printed',
    );
  }
}
