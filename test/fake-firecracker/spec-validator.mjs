/**
 * The fake's own loader for the official Firecracker spec: the plain-JS twin
 * of src/vmm/firecracker/spec.ts, so the fake runs without a build.
 * src/vmm/firecracker/fake-firecracker.test.ts checks that both report the
 * same violations for the same requests; change them together.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { parse } from 'yaml';

/** vendor/firecracker/firecracker.yaml inside the repository; FAKE_FC_SPEC overrides it. */
export const DEFAULT_SPEC_PATH = fileURLToPath(new URL('../../vendor/firecracker/firecracker.yaml', import.meta.url));

const SCHEMA_ID = 'firecracker.json';
const METHODS = ['get', 'put', 'patch', 'post', 'delete'];
const SWAGGER_ONLY = new Set(['example', 'discriminator', 'xml', 'externalDocs', 'readOnly']);
/** PATCH /machine-config is MachineConfigUpdate in Firecracker: every field optional. */
const OPTIONAL_FIELDS_FOR = new Set(['patchMachineConfiguration']);

function toJsonSchema(schema) {
  if (Array.isArray(schema)) return schema.map(toJsonSchema);
  if (schema === null || typeof schema !== 'object') return schema;
  const out = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k.startsWith('x-') || SWAGGER_ONLY.has(k)) continue;
    if (k === '$ref' && typeof v === 'string') out.$ref = v.startsWith('#/') ? `${SCHEMA_ID}${v}` : v;
    else if (k === 'properties' && v && typeof v === 'object') {
      out.properties = Object.fromEntries(Object.entries(v).map(([name, s]) => [name, toJsonSchema(s)]));
    } else if ((k === 'exclusiveMinimum' || k === 'exclusiveMaximum') && typeof v === 'boolean') {
      continue;
    } else if (k === 'format' && typeof v === 'string' && /[()[\]|\\]/.test(v)) {
      out.pattern = `^(?:${v})$`;
    } else if (k === 'description' || k === 'default' || k === 'enum' || k === 'required') out[k] = v;
    else out[k] = toJsonSchema(v);
  }
  if (schema.exclusiveMinimum === true) {
    out.exclusiveMinimum = schema.minimum;
    delete out.minimum;
  }
  if (schema.exclusiveMaximum === true) {
    out.exclusiveMaximum = schema.maximum;
    delete out.maximum;
  }
  // Firecracker's request structs deny unknown fields.
  if (out.properties && out.additionalProperties === undefined) out.additionalProperties = false;
  return out;
}

function templateToRegExp(template) {
  const source = template
    .split(/(\{[^}]+\})/)
    .map((part) => (/^\{[^}]+\}$/.test(part) ? '([^/]+)' : part.replace(/[.*+?^$()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}$`);
}

export function normalizeRequestPath(path) {
  const bare = path.split('?')[0] ?? '';
  return bare.length > 1 ? bare.replace(/\/+$/, '') : bare || '/';
}

function formatError(e) {
  const pointer = e.instancePath;
  let detail = e.message ?? 'is invalid';
  if (e.keyword === 'additionalProperties') detail += ` (${String(e.params.additionalProperty)})`;
  if (e.keyword === 'enum') detail += ` (${e.params.allowedValues.map((v) => JSON.stringify(v)).join(', ')})`;
  return { pointer, message: `${pointer || '(body)'} ${detail}` };
}

/**
 * Loads and compiles the spec. Returns { version, operations, findOperation,
 * validateRequest, validateResponse } with the same contracts as
 * FirecrackerSpec in spec.ts.
 */
export function loadSpec(path = process.env.FAKE_FC_SPEC || DEFAULT_SPEC_PATH) {
  const doc = parse(readFileSync(path, 'utf8'));
  if (doc?.swagger !== '2.0') throw new Error(`${path}: expected a Swagger 2.0 document`);
  const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false, strictRequired: false });
  ajv.addFormat('int32', { type: 'number', validate: (n) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 });
  ajv.addFormat('int64', { type: 'number', validate: (n) => Number.isSafeInteger(n) });
  const definitions = doc.definitions ?? {};
  ajv.addSchema({ $id: SCHEMA_ID, definitions: toJsonSchema(definitions) });
  const compile = (schema, optionalFields = false) => {
    if (!schema) return null;
    let json = toJsonSchema(schema);
    if (optionalFields && typeof json.$ref === 'string') {
      json = { ...toJsonSchema(definitions[json.$ref.slice(`${SCHEMA_ID}#/definitions/`.length)]) };
      delete json.required;
    }
    return ajv.compile(json);
  };

  const compiled = [];
  for (const [template, item] of Object.entries(doc.paths ?? {})) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const params = [...(item.parameters ?? []), ...(op.parameters ?? [])];
      const body = params.find((p) => p.in === 'body');
      const operationId = String(op.operationId);
      const responses = new Map();
      for (const [status, response] of Object.entries(op.responses ?? {})) responses.set(status, compile(response.schema));
      compiled.push({
        operationId,
        method: method.toUpperCase(),
        path: template,
        pathParams: params.filter((p) => p.in === 'path').map((p) => String(p.name)),
        bodyType: body?.schema ? (typeof body.schema.$ref === 'string' ? body.schema.$ref.split('/').pop() : 'inline') : null,
        bodyRequired: body?.required === true,
        pattern: templateToRegExp(template),
        validateBody: compile(body?.schema, OPTIONAL_FIELDS_FOR.has(operationId)),
        responses,
      });
    }
  }

  const find = (method, path) => {
    const m = method.toUpperCase();
    const bare = normalizeRequestPath(path);
    for (const op of compiled) {
      if (op.method !== m) continue;
      const hit = op.pattern.exec(bare);
      if (!hit) continue;
      const pathParams = {};
      op.pathParams.forEach((name, i) => {
        pathParams[name] = decodeURIComponent(hit[i + 1] ?? '');
      });
      return { op, pathParams };
    }
    return null;
  };
  const publicOp = ({ pattern: _p, validateBody: _v, responses: _r, ...op }) => op;

  return {
    version: String(doc.info?.version ?? 'unknown'),
    operations: compiled.map(publicOp),
    findOperation(method, path) {
      const hit = find(method, path);
      return hit ? { operation: publicOp(hit.op), pathParams: hit.pathParams } : null;
    },
    validateRequest(method, path, body) {
      const m = method.toUpperCase();
      const hit = find(m, path);
      const base = { method: m, path, pointer: '' };
      if (!hit) return [{ ...base, kind: 'unknown-operation', operationId: null, message: `no operation ${m} ${path} in the spec` }];
      const { op } = hit;
      const operationId = op.operationId;
      if (body === undefined) {
        return op.bodyRequired ? [{ ...base, kind: 'missing-body', operationId, message: `${operationId} requires a body (${op.bodyType})` }] : [];
      }
      if (!op.validateBody) return [{ ...base, kind: 'unexpected-body', operationId, message: `${operationId} takes no body` }];
      if (op.validateBody(body)) return [];
      return (op.validateBody.errors ?? []).map((e) => ({ ...base, kind: 'schema', operationId, ...formatError(e) }));
    },
    validateResponse(method, path, status, body) {
      const m = method.toUpperCase();
      const hit = find(m, path);
      const base = { method: m, path, pointer: '' };
      if (!hit) return [{ ...base, kind: 'unknown-operation', operationId: null, message: `no operation ${m} ${path} in the spec` }];
      const { op } = hit;
      const operationId = op.operationId;
      const key = op.responses.has(String(status)) ? String(status) : op.responses.has('default') ? 'default' : null;
      if (key === null) return [{ ...base, kind: 'schema', operationId, message: `${operationId} does not answer ${status}` }];
      const validate = op.responses.get(key) ?? null;
      if (!validate) return body === undefined ? [] : [{ ...base, kind: 'unexpected-body', operationId, message: `${operationId} ${status} has no body` }];
      if (validate(body)) return [];
      return (validate.errors ?? []).map((e) => ({ ...base, kind: 'schema', operationId, ...formatError(e) }));
    },
  };
}
