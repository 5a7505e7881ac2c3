#!/usr/bin/env node
/**
 * Generates src/vmm/firecracker/api.gen.ts from Firecracker's official
 * Swagger 2.0 spec (vendor/firecracker/firecracker.yaml): one TypeScript
 * interface (or type alias, for enums) per definition, and a typed table of
 * every operation (method, path template, path parameters, request body type,
 * success response type).
 *
 * A small generator of our own instead of openapi-typescript: v5 (the last to
 * read Swagger 2) is unmaintained, v7 needs a swagger2openapi conversion
 * first, and both nest types under `definitions[...]`/`components[...]`
 * without the runtime operation table the client and the fake need. The
 * spec uses a small subset of JSON schema (objects, enums, arrays, `$ref`,
 * `additionalProperties`), which maps to TypeScript directly.
 *
 * Output is deterministic (sorted, no timestamps) so CI can compare it with
 * the checked-in file: `src/vmm/firecracker/api.gen.test.ts` imports
 * `generateFirecrackerTypes` and fails when the file is stale.
 *
 * Usage: node scripts/generate-firecracker-types.mjs [--check] [SPEC [OUT]]
 *   --check  exit 1 (writing nothing) when OUT differs from what SPEC generates
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parse } from 'yaml';

const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));
export const DEFAULT_SPEC_PATH = fileURLToPath(new URL('../vendor/firecracker/firecracker.yaml', import.meta.url));
export const DEFAULT_OUTPUT_PATH = fileURLToPath(new URL('../src/vmm/firecracker/api.gen.ts', import.meta.url));

const METHODS = ['get', 'put', 'patch', 'post', 'delete'];
const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** Property key as written in TypeScript: bare when it is an identifier, quoted otherwise. */
function key(name) {
  return IDENT.test(name) ? name : lit(name);
}

/**
 * Definitions whose spec name would shadow a global in TypeScript code that
 * imports them (`Error`): they get a distinct name in the generated file.
 */
const RENAMED = { Error: 'FirecrackerFault' };

/** The TypeScript name of definition `name`. */
function tsName(name) {
  return RENAMED[name] ?? name;
}

/** The spec name a `$ref: '#/definitions/X'` points to. */
function refName(ref) {
  const m = /^#\/definitions\/(.+)$/.exec(ref);
  if (!m) throw new Error(`unsupported $ref ${ref} (only #/definitions/X)`);
  return m[1];
}

/** A literal in the project's quote style (single quotes). */
function lit(value) {
  if (typeof value !== 'string') return JSON.stringify(value);
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** YAML folds long descriptions over lines; JSDoc wants one clean paragraph. */
function docLines(schema, extra = []) {
  const lines = [];
  if (typeof schema.description === 'string') lines.push(schema.description.replace(/\s+/g, ' ').trim());
  if (schema.minimum !== undefined && schema.maximum !== undefined) lines.push(`Range: ${schema.minimum} to ${schema.maximum}.`);
  else if (schema.minimum !== undefined) lines.push(`Minimum: ${schema.minimum}.`);
  else if (schema.maximum !== undefined) lines.push(`Maximum: ${schema.maximum}.`);
  if (schema.format !== undefined && !['int32', 'int64'].includes(schema.format)) lines.push(`Format: \`${schema.format}\`.`);
  if (schema.default !== undefined) lines.push(`@default ${JSON.stringify(schema.default)}`);
  lines.push(...extra);
  return lines.map((l) => l.replace(/\*\//g, '*\\/'));
}

function jsdoc(lines, indent) {
  if (lines.length === 0) return '';
  if (lines.length === 1 && lines[0].length < 100) return `${indent}/** ${lines[0]} */\n`;
  return `${indent}/**\n${lines.map((l) => `${indent} * ${l}`).join('\n')}\n${indent} */\n`;
}

/** The TypeScript type of a schema; objects with properties become inline blocks. */
function tsType(schema, indent) {
  if (schema.$ref) return tsName(refName(schema.$ref));
  if (Array.isArray(schema.enum)) return schema.enum.map(lit).join(' | ');
  switch (schema.type) {
    case 'string':
      return 'string';
    case 'integer':
    case 'number':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'array': {
      const item = tsType(schema.items ?? {}, indent);
      return /[|&]/.test(item) ? `Array<${item}>` : `${item}[]`;
    }
    case 'object':
    case undefined:
      if (schema.properties) return `{\n${objectBody(schema, indent + '  ')}${indent}}`;
      if (schema.type === undefined && schema.additionalProperties === undefined) return 'unknown';
      return indexSignature(schema);
    default:
      throw new Error(`unsupported schema type ${String(schema.type)}`);
  }
}

function indexSignature(schema) {
  const ap = schema.additionalProperties;
  const value = ap && typeof ap === 'object' ? tsType(ap, '') : 'unknown';
  return `{ [key: string]: ${value} }`;
}

function objectBody(schema, indent) {
  const required = new Set(schema.required ?? []);
  let out = '';
  for (const [name, prop] of Object.entries(schema.properties ?? {})) {
    out += jsdoc(docLines(prop), indent);
    out += `${indent}${key(name)}${required.has(name) ? '' : '?'}: ${tsType(prop, indent)};\n`;
  }
  const ap = schema.additionalProperties;
  if (ap !== undefined && ap !== false) out += `${indent}[key: string]: ${ap === true ? 'unknown' : tsType(ap, indent)};\n`;
  return out;
}

function definition(specName, schema) {
  const name = tsName(specName);
  const extra = name === specName ? [] : [`Spec definition \`${specName}\`, renamed so it does not shadow the global \`${specName}\`.`];
  const doc = jsdoc(docLines(schema, extra), '');
  const isObject = (schema.type === 'object' || schema.type === undefined) && !schema.$ref && !schema.enum;
  if (isObject && (schema.properties || schema.additionalProperties !== undefined)) {
    const body = schema.properties ? objectBody(schema, '  ') : `  [key: string]: ${indexSignature(schema).slice(17, -2)};\n`;
    return `${doc}export interface ${name} {\n${body}}\n`;
  }
  return `${doc}export type ${name} = ${tsType(schema, '')};\n`;
}

/** Every operation of the spec, sorted by path then method. */
export function specOperations(spec) {
  const ops = [];
  for (const path of Object.keys(spec.paths ?? {}).sort()) {
    const item = spec.paths[path];
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      if (!op.operationId) throw new Error(`${method.toUpperCase()} ${path} has no operationId`);
      const params = [...(item.parameters ?? []), ...(op.parameters ?? [])];
      const body = params.find((p) => p.in === 'body');
      const success = Object.keys(op.responses ?? {})
        .map(Number)
        .filter((s) => s >= 200 && s < 300)
        .sort()[0];
      if (success === undefined) throw new Error(`${method.toUpperCase()} ${path} has no 2xx response`);
      ops.push({
        operationId: op.operationId,
        method: method.toUpperCase(),
        path,
        summary: (op.summary ?? '').replace(/\s+/g, ' ').trim(),
        pathParams: params.filter((p) => p.in === 'path').map((p) => p.name),
        body: body ? { schema: body.schema, required: body.required === true } : null,
        successStatus: success,
        responseSchema: op.responses[success]?.schema ?? null,
      });
    }
  }
  return ops;
}

function operationType(op) {
  const pathParams = op.pathParams.length ? `{ ${op.pathParams.map((p) => `${key(p)}: string`).join('; ')} }` : 'Record<string, never>';
  const body = op.body ? tsType(op.body.schema, '    ') : 'undefined';
  const response = op.responseSchema ? tsType(op.responseSchema, '    ') : 'void';
  return (
    jsdoc([`${op.method} ${op.path}${op.summary ? ` - ${op.summary}` : ''}`], '  ') +
    `  ${op.operationId}: {\n` +
    `    method: '${op.method}';\n` +
    `    path: ${lit(op.path)};\n` +
    `    pathParams: ${pathParams};\n` +
    `    body: ${body};\n` +
    `    bodyRequired: ${op.body?.required === true};\n` +
    `    response: ${response};\n` +
    `  };\n`
  );
}

function schemaLabel(schema) {
  if (!schema) return 'null';
  return lit(schema.$ref ? refName(schema.$ref) : 'inline');
}

function operationEntry(op) {
  return (
    `  ${op.operationId}: {\n` +
    `    method: '${op.method}',\n` +
    `    path: '${op.path}',\n` +
    `    pathParams: [${op.pathParams.map((p) => `'${p}'`).join(', ')}],\n` +
    `    bodyType: ${schemaLabel(op.body?.schema)},\n` +
    `    bodyRequired: ${op.body?.required === true},\n` +
    `    successStatus: ${op.successStatus},\n` +
    `    responseType: ${schemaLabel(op.responseSchema)},\n` +
    `  },\n`
  );
}

/**
 * Returns the text of api.gen.ts for the spec text `specText`. Pure and
 * deterministic: the same spec always yields the same bytes.
 */
export function generateFirecrackerTypes(specText, { specLabel = 'vendor/firecracker/firecracker.yaml' } = {}) {
  const spec = parse(specText);
  if (spec?.swagger !== '2.0') throw new Error('expected a Swagger 2.0 document');
  const digest = createHash('sha256').update(specText).digest('hex');
  const version = String(spec.info?.version ?? 'unknown');
  const ops = specOperations(spec);
  const defs = Object.keys(spec.definitions ?? {}).sort();

  let out =
    `// Generated, do not edit; run npm run generate:firecracker\n` +
    `// (scripts/generate-firecracker-types.mjs) after changing ${specLabel}.\n` +
    `// Source: Firecracker API ${version}, spec SHA-256 ${digest}.\n` +
    `/* eslint-disable */\n\n` +
    `/** The \`info.version\` of the spec these types were generated from. */\n` +
    `export const FIRECRACKER_API_VERSION = '${version}';\n\n` +
    `// ---- Definitions ----\n\n`;
  out += defs.map((name) => definition(name, spec.definitions[name])).join('\n');
  out +=
    `\n// ---- Operations ----\n\n` +
    `/** Types of every operation, keyed by operationId. \`body\` is the request body, \`response\` the success body (void for 204). */\n` +
    `export interface FirecrackerOperations {\n${ops.map(operationType).join('')}}\n\n` +
    `export type FirecrackerOperationId = keyof FirecrackerOperations;\n` +
    `export type FirecrackerHttpMethod = 'GET' | 'PUT' | 'PATCH';\n\n` +
    `/** Runtime description of one operation; \`bodyType\`/\`responseType\` name a definition, 'inline' or null. */\n` +
    `export interface FirecrackerOperationInfo {\n` +
    `  readonly method: FirecrackerHttpMethod;\n` +
    `  readonly path: string;\n` +
    `  readonly pathParams: readonly string[];\n` +
    `  readonly bodyType: string | null;\n` +
    `  readonly bodyRequired: boolean;\n` +
    `  readonly successStatus: number;\n` +
    `  readonly responseType: string | null;\n` +
    `}\n\n` +
    `/** Every operation of the spec, keyed by operationId. */\n` +
    `export const FIRECRACKER_OPERATIONS = {\n${ops.map(operationEntry).join('')}} as const satisfies Record<FirecrackerOperationId, FirecrackerOperationInfo>;\n`;
  return out;
}

function main(argv) {
  const check = argv.includes('--check');
  const [specPath = DEFAULT_SPEC_PATH, outPath = DEFAULT_OUTPUT_PATH] = argv.filter((a) => a !== '--check');
  const text = generateFirecrackerTypes(readFileSync(specPath, 'utf8'));
  const shown = relative(REPO_ROOT, outPath);
  if (check) {
    let current = null;
    try {
      current = readFileSync(outPath, 'utf8');
    } catch {
      // a missing file is as stale as a different one
    }
    if (current !== text) {
      console.error(`${shown} is stale: run npm run generate:firecracker`);
      process.exit(1);
    }
    console.log(`${shown} is up to date`);
    return;
  }
  mkdirSync(dirname(outPath), { recursive: true });
  writeFileSync(outPath, text);
  console.log(`wrote ${shown}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main(process.argv.slice(2));
