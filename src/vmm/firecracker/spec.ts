/**
 * The official Firecracker Swagger 2.0 spec as data at run time: finds the
 * operation a request targets (by matching path templates such as
 * `/drives/{drive_id}`) and checks request bodies (and, for the test double,
 * response bodies) against the operation's schema with ajv.
 *
 * For tests and the fake Firecracker only: it reads
 * vendor/firecracker/firecracker.yaml inside the repository and imports
 * devDependencies (ajv, yaml), so production code must not import it. The
 * fake carries a plain-JS twin (test/fake-firecracker/spec-validator.mjs);
 * fake-firecracker.test.ts checks that both report the same violations.
 */
import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { parse } from 'yaml';
import { packagePath } from '../../package-root.js';

/** The spec file in the package (vendored, see vendor/firecracker/SOURCE.md). */
export const DEFAULT_FIRECRACKER_SPEC_PATH = packagePath('vendor/firecracker/firecracker.yaml');

const SCHEMA_ID = 'firecracker.json';
const METHODS = ['get', 'put', 'patch', 'post', 'delete'] as const;
/** Swagger-only keywords that JSON schema does not know (plus every `x-*`). */
const SWAGGER_ONLY = new Set(['example', 'discriminator', 'xml', 'externalDocs', 'readOnly']);

/** One rule broken by a request (or a response). */
export interface SpecViolation {
  /** What kind of rule: no such operation, body missing/unexpected/malformed, or a schema keyword. */
  kind: 'unknown-operation' | 'missing-body' | 'unexpected-body' | 'schema';
  method: string;
  path: string;
  operationId: string | null;
  /** JSON pointer into the body ('' for the body itself). */
  pointer: string;
  /** e.g. "/vcpu_count must be >= 1". */
  message: string;
}

/** One operation of the spec. */
export interface SpecOperation {
  operationId: string;
  method: string;
  /** Path template, e.g. `/drives/{drive_id}`. */
  path: string;
  pathParams: string[];
  /** Name of the body's definition, 'inline', or null when the operation takes no body. */
  bodyType: string | null;
  bodyRequired: boolean;
}

/** A request matched to its operation. */
export interface OperationMatch {
  operation: SpecOperation;
  /** Path parameters decoded from the concrete path, e.g. `{ drive_id: 'rootfs' }`. */
  pathParams: Record<string, string>;
}

export interface LoadSpecOptions {
  /**
   * Treat properties the spec does not list as violations (JSON schema allows
   * them unless told otherwise). Default true, because Firecracker's request
   * structs use serde's `deny_unknown_fields` and answer 400 to an unknown
   * field: a misspelt field must fail in tests as it would in production.
   * Objects that declare `additionalProperties` keep their declaration.
   */
  rejectUnknownFields?: boolean;
}

interface SwaggerSchema {
  [key: string]: unknown;
}

interface CompiledOperation extends SpecOperation {
  pattern: RegExp;
  validateBody: ValidateFunction | null;
  responses: Map<string, ValidateFunction | null>;
}

/**
 * Firecracker accepts less than the spec says in one place: PATCH
 * /machine-config reuses the MachineConfiguration schema, whose
 * `vcpu_count`/`mem_size_mib` are required, but Firecracker parses it as
 * MachineConfigUpdate where every field is optional.
 */
const OPTIONAL_FIELDS_FOR: ReadonlySet<string> = new Set(['patchMachineConfiguration']);

/**
 * Swagger 2 schema -> JSON schema (draft-07, ajv's default): drops
 * Swagger-only keywords, makes `$ref`s absolute, turns draft-4 boolean
 * `exclusiveMinimum/Maximum` into numbers, turns a `format` that is really a
 * regular expression (the spec's MMDS `ipv4_address`) into an anchored
 * `pattern`, and closes objects when `rejectUnknownFields`.
 */
export function toJsonSchema(schema: unknown, rejectUnknownFields: boolean): unknown {
  if (Array.isArray(schema)) return schema.map((s) => toJsonSchema(s, rejectUnknownFields));
  if (schema === null || typeof schema !== 'object') return schema;
  const src = schema as SwaggerSchema;
  const out: SwaggerSchema = {};
  for (const [k, v] of Object.entries(src)) {
    if (k.startsWith('x-') || SWAGGER_ONLY.has(k)) continue;
    if (k === '$ref' && typeof v === 'string') out.$ref = v.startsWith('#/') ? `${SCHEMA_ID}${v}` : v;
    else if (k === 'properties' && v && typeof v === 'object') {
      out.properties = Object.fromEntries(Object.entries(v as SwaggerSchema).map(([name, s]) => [name, toJsonSchema(s, rejectUnknownFields)]));
    } else if ((k === 'exclusiveMinimum' || k === 'exclusiveMaximum') && typeof v === 'boolean') {
      continue; // draft-4 form, rewritten below
    } else if (k === 'format' && typeof v === 'string' && /[()[\]|\\]/.test(v)) {
      out.pattern = `^(?:${v})$`;
    } else if (k === 'description' || k === 'default' || k === 'enum' || k === 'required') out[k] = v;
    else out[k] = toJsonSchema(v, rejectUnknownFields);
  }
  if (src.exclusiveMinimum === true) {
    out.exclusiveMinimum = src.minimum;
    delete out.minimum;
  }
  if (src.exclusiveMaximum === true) {
    out.exclusiveMaximum = src.maximum;
    delete out.maximum;
  }
  if (rejectUnknownFields && out.properties && out.additionalProperties === undefined) out.additionalProperties = false;
  return out;
}

function templateToRegExp(template: string): RegExp {
  const source = template
    .split(/(\{[^}]+\})/)
    .map((part) => (/^\{[^}]+\}$/.test(part) ? '([^/]+)' : part.replace(/[.*+?^$()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}$`);
}

/** Strips the query string and a trailing slash (Firecracker ignores both). */
export function normalizeRequestPath(path: string): string {
  const bare = path.split('?')[0] ?? '';
  return bare.length > 1 ? bare.replace(/\/+$/, '') : bare || '/';
}

function formatError(e: ErrorObject): { pointer: string; message: string } {
  const pointer = e.instancePath;
  let detail = e.message ?? 'is invalid';
  if (e.keyword === 'additionalProperties') detail += ` (${String(e.params.additionalProperty)})`;
  if (e.keyword === 'enum') detail += ` (${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')})`;
  return { pointer, message: `${pointer || '(body)'} ${detail}` };
}

/** The spec loaded and compiled; build one with `loadFirecrackerSpec`. */
export class FirecrackerSpec {
  readonly version: string;
  readonly operations: readonly SpecOperation[];
  private readonly compiled: CompiledOperation[];

  constructor(specText: string, options: LoadSpecOptions = {}) {
    const reject = options.rejectUnknownFields ?? true;
    const doc = parse(specText) as SwaggerSchema;
    if (doc.swagger !== '2.0') throw new Error('expected a Swagger 2.0 document');
    this.version = String((doc.info as SwaggerSchema | undefined)?.version ?? 'unknown');

    const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false, strictRequired: false });
    ajv.addFormat('int32', { type: 'number', validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 });
    ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isSafeInteger(n) });
    const definitions = (doc.definitions ?? {}) as Record<string, unknown>;
    ajv.addSchema({ $id: SCHEMA_ID, definitions: toJsonSchema(definitions, reject) as object });
    const compile = (schema: unknown, optionalFields = false): ValidateFunction | null => {
      if (!schema) return null;
      let json = toJsonSchema(schema, reject) as SwaggerSchema;
      if (optionalFields && typeof json.$ref === 'string') {
        const name = json.$ref.slice(`${SCHEMA_ID}#/definitions/`.length);
        json = { ...(toJsonSchema(definitions[name], reject) as SwaggerSchema) };
        delete json.required;
      }
      return ajv.compile(json);
    };

    this.compiled = [];
    for (const [template, item] of Object.entries((doc.paths ?? {}) as Record<string, SwaggerSchema>)) {
      for (const method of METHODS) {
        const op = item[method] as SwaggerSchema | undefined;
        if (!op) continue;
        const params = [...((item.parameters ?? []) as SwaggerSchema[]), ...((op.parameters ?? []) as SwaggerSchema[])];
        const body = params.find((p) => p.in === 'body');
        const bodySchema = body?.schema as SwaggerSchema | undefined;
        const operationId = String(op.operationId);
        const responses = new Map<string, ValidateFunction | null>();
        for (const [status, response] of Object.entries((op.responses ?? {}) as Record<string, SwaggerSchema>)) {
          responses.set(status, compile(response.schema));
        }
        this.compiled.push({
          operationId,
          method: method.toUpperCase(),
          path: template,
          pathParams: params.filter((p) => p.in === 'path').map((p) => String(p.name)),
          bodyType: bodySchema ? (typeof bodySchema.$ref === 'string' ? bodySchema.$ref.split('/').pop()! : 'inline') : null,
          bodyRequired: body?.required === true,
          pattern: templateToRegExp(template),
          validateBody: compile(bodySchema, OPTIONAL_FIELDS_FOR.has(operationId)),
          responses,
        });
      }
    }
    this.operations = this.compiled.map(({ pattern: _p, validateBody: _v, responses: _r, ...op }) => op);
  }

  /** The operation `method path` targets, with its path parameters; null when the spec has none. */
  findOperation(method: string, path: string): OperationMatch | null {
    const m = method.toUpperCase();
    const bare = normalizeRequestPath(path);
    for (const op of this.compiled) {
      if (op.method !== m) continue;
      const hit = op.pattern.exec(bare);
      if (!hit) continue;
      const pathParams: Record<string, string> = {};
      op.pathParams.forEach((name, i) => {
        pathParams[name] = decodeURIComponent(hit[i + 1] ?? '');
      });
      const { pattern: _p, validateBody: _v, responses: _r, ...operation } = op;
      return { operation, pathParams };
    }
    return null;
  }

  /**
   * Checks a request against the spec: the operation exists, a required body
   * is present, an operation without a body gets none, and the body matches
   * the operation's schema. `body` is the parsed JSON, `undefined` for no
   * body. Returns every violation; an empty list means the request is valid.
   */
  validateRequest(method: string, path: string, body: unknown): SpecViolation[] {
    const m = method.toUpperCase();
    const match = this.findOperation(m, path);
    const base = { method: m, path, pointer: '' };
    if (!match) {
      return [{ ...base, kind: 'unknown-operation', operationId: null, message: `no operation ${m} ${path} in the spec` }];
    }
    const op = this.compiled.find((o) => o.operationId === match.operation.operationId)!;
    const operationId = op.operationId;
    if (body === undefined) {
      return op.bodyRequired ? [{ ...base, kind: 'missing-body', operationId, message: `${operationId} requires a body (${op.bodyType})` }] : [];
    }
    if (!op.validateBody) return [{ ...base, kind: 'unexpected-body', operationId, message: `${operationId} takes no body` }];
    if (op.validateBody(body)) return [];
    return (op.validateBody.errors ?? []).map((e) => ({ ...base, kind: 'schema' as const, operationId, ...formatError(e) }));
  }

  /**
   * Checks a response body against the schema the spec gives for `status`
   * (or `default`). Returns violations like `validateRequest`; a status the
   * spec does not list for the operation is one.
   */
  validateResponse(method: string, path: string, status: number, body: unknown): SpecViolation[] {
    const m = method.toUpperCase();
    const match = this.findOperation(m, path);
    const base = { method: m, path, pointer: '' };
    if (!match) return [{ ...base, kind: 'unknown-operation', operationId: null, message: `no operation ${m} ${path} in the spec` }];
    const op = this.compiled.find((o) => o.operationId === match.operation.operationId)!;
    const operationId = op.operationId;
    const key = op.responses.has(String(status)) ? String(status) : op.responses.has('default') ? 'default' : null;
    if (key === null) return [{ ...base, kind: 'schema', operationId, message: `${operationId} does not answer ${status}` }];
    const validate = op.responses.get(key) ?? null;
    if (!validate) return body === undefined ? [] : [{ ...base, kind: 'unexpected-body', operationId, message: `${operationId} ${status} has no body` }];
    if (validate(body)) return [];
    return (validate.errors ?? []).map((e) => ({ ...base, kind: 'schema' as const, operationId, ...formatError(e) }));
  }
}

const cache = new Map<string, FirecrackerSpec>();

/**
 * Reads and compiles the spec at `path` (default: the shared official spec).
 * Cached per path and options: calling it again is cheap. Throws when the
 * file is missing or is not Swagger 2.0.
 */
export function loadFirecrackerSpec(path: string = DEFAULT_FIRECRACKER_SPEC_PATH, options: LoadSpecOptions = {}): FirecrackerSpec {
  const key = `${options.rejectUnknownFields ?? true}:${path}`;
  let spec = cache.get(key);
  if (!spec) {
    spec = new FirecrackerSpec(readFileSync(path, 'utf8'), options);
    cache.set(key, spec);
  }
  return spec;
}

/** `validateRequest` against the default spec; see FirecrackerSpec.validateRequest. */
export function validateRequest(method: string, path: string, body: unknown): SpecViolation[] {
  return loadFirecrackerSpec().validateRequest(method, path, body);
}
