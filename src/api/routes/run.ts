/**
 * POST /v1/run: run a program in a fresh VM and answer with its output
 * (src/run does the work; this route only translates JSON).
 */
import type { FastifyInstance } from 'fastify';
import { InvalidArgumentError, NotFoundError } from '../../errors/index.js';
import { runAnswer, type RunFile } from '../../run/index.js';
import type { ApiDeps } from '../deps.js';
import { MAX_RUN_BODY_BYTES } from '../limits.js';
import { ErrorBody, RunRequest, RunResponse } from '../schemas.js';

interface RunBody {
  language: string;
  code: string;
  stdin?: string;
  files?: Array<{ path: string; content: string; encoding?: 'utf8' | 'base64' }>;
  env?: Record<string, string>;
  timeout_ms?: number;
  pool?: string;
}

function decodeFiles(files: RunBody['files']): RunFile[] | undefined {
  return files?.map((f, i) => {
    if (f.encoding === 'base64' && !/^[A-Za-z0-9+/]*={0,2}$/.test(f.content)) {
      throw new InvalidArgumentError(`files[${i}].content is not valid base64 (encoding "base64")`, { details: { field: `files[${i}].content` } });
    }
    return { path: f.path, content: Buffer.from(f.content, f.encoding === 'base64' ? 'base64' : 'utf8') };
  });
}

export function runRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.post<{ Body: RunBody }>(
    '/v1/run',
    {
      bodyLimit: MAX_RUN_BODY_BYTES,
      schema: {
        summary: 'Run a program (python, node, bash) in a fresh VM; answers with its output, exit code and timings',
        body: RunRequest,
        response: { 200: RunResponse, 400: ErrorBody, 404: ErrorBody, 413: ErrorBody, 422: ErrorBody, 503: ErrorBody },
      },
    },
    async (req) => {
      if (!deps.runner) throw new NotFoundError('code execution (POST /v1/run) is not enabled in this server');
      const b = req.body;
      const files = decodeFiles(b.files);
      const r = await deps.runner.run({
        language: b.language,
        code: b.code,
        ...(b.stdin !== undefined && { stdin: b.stdin }),
        ...(files && { files }),
        ...(b.env && { env: b.env }),
        ...(b.timeout_ms !== undefined && { timeoutMs: b.timeout_ms }),
        ...(b.pool !== undefined && { pool: b.pool }),
      });
      return runAnswer(r);
    },
  );
}
