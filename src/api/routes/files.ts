/**
 * File routes: uploads stream the request body into the guest and downloads
 * stream the guest file out, in the agent's chunks, so a file of any size up
 * to `api.max_upload_bytes` moves with constant daemon memory; list, stat,
 * mkdir and remove answer in JSON (a listing is bounded by the agent's
 * LIST_DIR_MAX_ENTRIES). This module never buffers a whole file and never
 * touches the agent except through Vm.
 */
import type { FastifyInstance } from 'fastify';
import { Readable } from 'node:stream';
import { InvalidArgumentError, PayloadTooLargeError, TfcError, UnsupportedMediaTypeError } from '../../errors/index.js';
import { LIST_DIR_MAX_ENTRIES } from '../../guest/agent-protocol.js';
import type { GuestDirEntry } from '../../guest/agent-fs.js';
import type { ApiDeps } from '../deps.js';
import type { ApiLimits } from '../limits.js';
import {
  ErrorBody,
  FileQuery,
  ListQuery,
  ListResponse,
  MkdirRequest,
  MkdirResponse,
  PathQuery,
  RemoveQuery,
  RemoveResponse,
  StatResponse,
  VmIdParams,
} from '../schemas.js';
import { checkGuestPath, parseMode } from '../validation.js';
import { allocatedVm } from '../vm-view.js';

type FileRequest = { Params: { id: string }; Querystring: { path: string; mode?: string } };
type ListRequest = { Params: { id: string }; Querystring: { path: string; max_entries?: string } };
type RemoveRequest = { Params: { id: string }; Querystring: { path: string; recursive?: 'true' | 'false' } };
type MkdirBody = { Params: { id: string }; Body: { path: string; parents?: boolean; mode?: string } };

/** Errors a file operation may answer with (agent failures are 502 AGENT_ERROR with details.agent_code). */
const OP_ERRORS = { 400: ErrorBody, 404: ErrorBody, 409: ErrorBody, 502: ErrorBody, 504: ErrorBody };

function wireEntry(e: GuestDirEntry) {
  return {
    name: e.name,
    ...(e.nameBytes && { name_b64: e.nameBytes.toString('base64') }),
    type: e.type,
    size: e.size,
    mode: e.mode,
    mtime_ms: e.mtimeMs,
  };
}

function parseMaxEntries(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (n < 1 || n > LIST_DIR_MAX_ENTRIES) {
    throw new InvalidArgumentError(`max_entries must be between 1 and ${LIST_DIR_MAX_ENTRIES}, got ${value}`, {
      details: { max: LIST_DIR_MAX_ENTRIES },
    });
  }
  return n;
}

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
      const chunks = vm.readFileChunks(path, { maxBytes: limits.maxDownloadBytes })[Symbol.asyncIterator]();
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

  app.get<ListRequest>(
    '/v1/vms/:id/files/list',
    {
      schema: {
        summary: `List a guest directory (sorted by name, symlinks not followed, at most max_entries entries: default and maximum ${LIST_DIR_MAX_ENTRIES})`,
        params: VmIdParams,
        querystring: ListQuery,
        response: { 200: ListResponse, ...OP_ERRORS },
      },
    },
    async (req) => {
      const path = checkGuestPath('path', req.query.path, { absolute: true });
      const maxEntries = parseMaxEntries(req.query.max_entries);
      const vm = allocatedVm(deps, req.params.id);
      const listing = await vm.listDir(path, maxEntries !== undefined ? { maxEntries } : {});
      return { path, entries: listing.entries.map(wireEntry), truncated: listing.truncated };
    },
  );

  app.get<{ Params: { id: string }; Querystring: { path: string } }>(
    '/v1/vms/:id/files/stat',
    {
      schema: {
        summary: 'Describe a guest path (lstat: a symlink is described, with its target, not followed)',
        params: VmIdParams,
        querystring: PathQuery,
        response: { 200: StatResponse, ...OP_ERRORS },
      },
    },
    async (req) => {
      const path = checkGuestPath('path', req.query.path, { absolute: true });
      const st = await allocatedVm(deps, req.params.id).stat(path);
      return {
        path,
        type: st.type,
        size: st.size,
        mode: st.mode,
        uid: st.uid,
        gid: st.gid,
        mtime_ms: st.mtimeMs,
        symlink_target: st.symlinkTarget,
        ...(st.symlinkTargetBytes && { symlink_target_b64: st.symlinkTargetBytes.toString('base64') }),
      };
    },
  );

  app.post<MkdirBody>(
    '/v1/vms/:id/files/mkdir',
    {
      schema: {
        summary: 'Create a guest directory (parents: also missing parents, and an existing directory is success)',
        params: VmIdParams,
        body: MkdirRequest,
        response: { 200: MkdirResponse, ...OP_ERRORS },
      },
    },
    async (req) => {
      const path = checkGuestPath('path', req.body.path, { absolute: true });
      const mode = parseMode(req.body.mode);
      const vm = allocatedVm(deps, req.params.id);
      const r = await vm.mkdir(path, { ...(req.body.parents !== undefined && { parents: req.body.parents }), ...(mode !== undefined && { mode }) });
      return { path, created: r.created };
    },
  );

  app.delete<RemoveRequest>(
    '/v1/vms/:id/files',
    {
      schema: {
        summary: 'Remove a guest file, symlink or empty directory; recursive=true removes a directory tree (never following symlinks; "/" is refused)',
        params: VmIdParams,
        querystring: RemoveQuery,
        response: { 200: RemoveResponse, ...OP_ERRORS },
      },
    },
    async (req) => {
      const path = checkGuestPath('path', req.query.path, { absolute: true });
      const vm = allocatedVm(deps, req.params.id);
      const r = await vm.remove(path, { recursive: req.query.recursive === 'true' });
      return { path, removed: r.removed };
    },
  );
}
