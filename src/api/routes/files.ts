/**
 * File routes: uploads stream the request body into the guest and downloads
 * stream the guest file out, in the agent's chunks, so a file of any size up
 * to `api.max_upload_bytes` moves with constant daemon memory. This module
 * never buffers a whole file and never touches the agent except through Vm.
 */
import type { FastifyInstance } from 'fastify';
import { Readable } from 'node:stream';
import { InvalidArgumentError, PayloadTooLargeError, TfcError, UnsupportedMediaTypeError } from '../../errors/index.js';
import type { ApiDeps } from '../deps.js';
import type { ApiLimits } from '../limits.js';
import { ErrorBody, FileQuery, VmIdParams } from '../schemas.js';
import { checkGuestPath, parseMode } from '../validation.js';
import { allocatedVm } from '../vm-view.js';

type FileRequest = { Params: { id: string }; Querystring: { path: string; mode?: string } };

function tooLarge(limit: number): TfcError {
  return new PayloadTooLargeError(`the upload is larger than ${limit} bytes (api.max_upload_bytes); split the file or raise the limit`, {
    details: { limit_bytes: limit },
  });
}

/**
 * Yields the request body's chunks, failing with PayloadTooLargeError once
 * more than `limit` bytes arrived. Leaving early does not destroy the
 * request: the error answer still has to go out on its socket.
 */
async function* capped(body: Readable, limit: number): AsyncGenerator<Buffer> {
  let received = 0;
  try {
    for await (const chunk of body.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      received += chunk.length;
      if (received > limit) throw tooLarge(limit);
      yield chunk;
    }
  } catch (err) {
    if (err instanceof TfcError) throw err;
    // The client went away (or the request timed out) mid-upload; nobody is left to read the answer.
    throw new InvalidArgumentError(`the upload ended early after ${received} bytes: ${(err as Error).message}`, { cause: err });
  }
}

export function fileRoutes(app: FastifyInstance, deps: ApiDeps, limits: ApiLimits): void {
  app.put<FileRequest>(
    '/v1/vms/:id/files',
    {
      schema: {
        summary: `Upload a file (body: raw bytes, Content-Type application/octet-stream, at most api.max_upload_bytes; streamed into the guest)`,
        params: VmIdParams,
        querystring: FileQuery,
        response: { 400: ErrorBody, 404: ErrorBody, 409: ErrorBody, 413: ErrorBody, 415: ErrorBody },
      },
    },
    async (req, reply) => {
      const path = checkGuestPath('path', req.query.path, { absolute: true });
      const body: unknown = req.body;
      if (!(body instanceof Readable)) {
        throw new UnsupportedMediaTypeError('send the file as the raw request body with Content-Type: application/octet-stream');
      }
      const declared = Number(req.headers['content-length']);
      if (declared > limits.maxUploadBytes) throw tooLarge(limits.maxUploadBytes);
      const vm = allocatedVm(deps, req.params.id);
      const mode = parseMode(req.query.mode);
      await vm.writeFileFrom(path, capped(body, limits.maxUploadBytes), { mkdirs: true, ...(mode !== undefined ? { mode } : {}) });
      reply.code(204);
    },
  );

  app.get<FileRequest>(
    '/v1/vms/:id/files',
    {
      schema: {
        summary: 'Download a file (raw bytes, streamed from the guest)',
        params: VmIdParams,
        querystring: FileQuery,
        response: { 400: ErrorBody, 404: ErrorBody, 409: ErrorBody },
      },
    },
    async (req, reply) => {
      const path = checkGuestPath('path', req.query.path, { absolute: true });
      if (req.query.mode !== undefined) throw new InvalidArgumentError('mode applies to uploads only; leave it out of a download');
      const vm = allocatedVm(deps, req.params.id);
      const chunks = vm.readFileChunks(path)[Symbol.asyncIterator]();
      // The first chunk is read before answering, so a missing file is still an error answer, not a cut stream.
      const first = await chunks.next();
      async function* rest(): AsyncGenerator<Buffer> {
        try {
          if (first.done) return;
          yield first.value;
          for (let next = await chunks.next(); !next.done; next = await chunks.next()) yield next.value;
        } finally {
          // A client that hung up stops the reads too.
          await chunks.return?.();
        }
      }
      reply.header('content-type', 'application/octet-stream');
      // A failure after the headers went out destroys the stream: the client sees a cut (chunked) answer, never a short file that looks whole.
      return reply.send(Readable.from(rest(), { objectMode: false, highWaterMark: 1 }));
    },
  );
}
