/**
 * The `[cluster]` table of tfc.toml: the file schema (every key optional, as
 * in src/config/schema.ts, so the root schema can embed it as
 * `cluster: ClusterFileSchema.optional()`), and `resolveClusterConfig`, which
 * applies defaults, reads secrets from the environment and checks the rules
 * that span keys. Must not import src/config (config will import this file).
 */
import { hostname } from 'node:os';
import * as z from 'zod';
import { intIn } from '../zod-rules.js';
import { ConfigInvalidError } from '../errors/index.js';

/**
 * A node name: a lower-case DNS label of at most 32 characters. It appears in
 * etcd keys, in VM ids (`NODE~vm-...`) and in URL paths, so it is restricted
 * to characters that need no escaping in any of them.
 */
export const NODE_NAME_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/;
/** An etcd client endpoint: `http(s)://HOST:PORT` (HOST a name, IPv4 or bracketed IPv6). */
export const ETCD_ENDPOINT_PATTERN = /^https?:\/\/(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$/;
/** A key prefix: starts and ends with `/`, printable ASCII without spaces. */
export const KEY_PREFIX_PATTERN = /^\/(?:[A-Za-z0-9._-]+\/)*$/;
const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const CLUSTER_DEFAULTS = {
  lease_ttl_s: 10,
  publish_interval_ms: 1000,
  key_prefix: '/tfc/',
  call_timeout_ms: 3000,
} as const;

function path(what: string) {
  return z.string({ error: `must be a non-empty string (path to ${what})` }).min(1);
}

function envName(what: string) {
  return z.string({ error: `must be the name of an environment variable holding ${what}, e.g. "TFC_CLUSTER_TOKEN"` }).regex(ENV_NAME_PATTERN);
}

export const ClusterFileSchema = z
  .strictObject(
    {
      endpoints: z
        .array(z.string({ error: 'must be an etcd client URL such as "http://10.0.0.1:2379" or "https://etcd-1.example:2379"' }).regex(ETCD_ENDPOINT_PATTERN), {
          error: 'must be an array of etcd client URLs, e.g. ["http://10.0.0.1:2379", "http://10.0.0.2:2379", "http://10.0.0.3:2379"]',
        })
        .min(1)
        .max(16),
      ca_file: path('the PEM CA bundle that signed the etcd server certificates'),
      cert_file: path('this node’s PEM client certificate for etcd (with key_file)'),
      key_file: path('the PEM private key of cert_file'),
      username: z.string({ error: 'must be a non-empty string (etcd user name)' }).min(1).max(128),
      password: z.string({ error: 'must be a string (etcd password; prefer password_env)' }).min(1).max(1024),
      password_env: envName('the etcd password'),
      node_name: z.string({ error: `must be a lower-case DNS label of 1 to 32 characters (a-z, 0-9, "-"), e.g. "node-1"` }).regex(NODE_NAME_PATTERN),
      advertise_url: z
        .string({ error: 'must be the http:// or https:// URL other nodes reach this daemon at, e.g. "http://10.0.0.1:8080"' })
        .refine((v) => /^https?:\/\/[^\s/]+\/?$/.test(v) && URL.canParse(v)),
      token: z.string({ error: 'must be a string of at least 16 characters (shared secret for node-to-node calls; prefer token_env)' }).min(16).max(1024),
      token_env: envName('the node-to-node token'),
      lease_ttl_s: intIn(2, 300),
      publish_interval_ms: intIn(100, 60_000),
      key_prefix: z
        .string({ error: 'must start and end with "/" and contain only A-Z a-z 0-9 . _ - between, e.g. "/tfc/" or "/tfc/prod/"' })
        .regex(KEY_PREFIX_PATTERN)
        .max(128),
      call_timeout_ms: intIn(100, 60_000),
    },
    { error: 'must be a table [cluster] (endpoints, node_name, advertise_url, token_env, ...: docs/cluster.md)' },
  )
  .partial();

export type ClusterFile = z.infer<typeof ClusterFileSchema>;

/** Effective cluster settings, defaults applied and secrets resolved. */
export interface ClusterConfig {
  endpoints: string[];
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  auth?: { username: string; password: string };
  nodeName: string;
  advertiseUrl: string;
  /** Bearer token this node sends to, and expects from, other nodes. */
  token: string;
  leaseTtlS: number;
  publishIntervalMs: number;
  keyPrefix: string;
  /** Bound on every unary etcd call (put, get, grant, keepalive); streams are not bounded by it. */
  callTimeoutMs: number;
}

export interface ResolveOptions {
  /** Environment for password_env / token_env (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Host name used when node_name is not set (default os.hostname()). */
  hostname?: string;
}

/** The default node name: the first label of the host name, lower-cased, when it is a valid node name. */
export function defaultNodeName(host: string): string | null {
  const label = host.split('.')[0]?.toLowerCase() ?? '';
  return NODE_NAME_PATTERN.test(label) ? label : null;
}

function fail(problems: string[]): never {
  throw new ConfigInvalidError(`invalid [cluster] configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`, { details: { problems } });
}

/**
 * Parses a raw `[cluster]` table (as read from TOML) into a `ClusterConfig`.
 * Throws CONFIG_INVALID listing every problem as `cluster.KEY: what is wrong
 * and how to fix it`. Pure apart from reading `env`; TLS files are read when
 * the client is created (etcd-client.ts), so a missing file is reported there.
 */
export function resolveClusterConfig(raw: unknown, options: ResolveOptions = {}): ClusterConfig {
  const parsed = ClusterFileSchema.safeParse(raw);
  if (!parsed.success) {
    fail(
      parsed.error.issues.map((i) => {
        if (i.code === 'unrecognized_keys')
          return `cluster: unknown key(s) ${i.keys.map((k) => JSON.stringify(k)).join(', ')} (known: ${Object.keys(ClusterFileSchema.shape).join(', ')})`;
        const key = ['cluster', ...i.path.map(String)].join('.');
        return `${key}: ${i.message}`;
      }),
    );
  }
  return fromFile(parsed.data, options);
}

/** Applies defaults and cross-key rules to an already schema-checked table. Throws CONFIG_INVALID. */
export function fromFile(file: ClusterFile, options: ResolveOptions = {}): ClusterConfig {
  const env = options.env ?? process.env;
  const problems: string[] = [];
  if (!file.endpoints) problems.push('cluster.endpoints: missing; list the etcd client URLs, e.g. endpoints = ["http://10.0.0.1:2379"]');
  if (!file.advertise_url) problems.push('cluster.advertise_url: missing; set the URL other nodes reach this daemon at, e.g. "http://10.0.0.1:8080"');
  const host = options.hostname ?? hostname();
  const nodeName = file.node_name ?? defaultNodeName(host);
  if (nodeName === null)
    problems.push(`cluster.node_name: missing, and the host name ${JSON.stringify(host)} is not a valid node name; set node_name (a-z, 0-9, "-", at most 32)`);

  const secret = (key: 'password' | 'token', envKey: 'password_env' | 'token_env'): string | undefined => {
    const direct = file[key];
    const name = file[envKey];
    if (direct !== undefined && name !== undefined) {
      problems.push(`cluster.${key} and cluster.${envKey}: both set; keep one (${envKey} keeps the secret out of the file)`);
      return undefined;
    }
    if (name === undefined) return direct;
    const value = env[name];
    if (value === undefined || value === '') {
      problems.push(`cluster.${envKey}: environment variable ${name} is not set or empty; export it before starting tfc`);
      return undefined;
    }
    return value;
  };
  const token = secret('token', 'token_env');
  if (token === undefined && file.token === undefined && file.token_env === undefined) {
    problems.push('cluster.token_env: missing; nodes authenticate to each other with a shared token: set token_env = "TFC_CLUSTER_TOKEN" (or token)');
  } else if (token !== undefined && token.length < 16) {
    problems.push('cluster.token_env: the token is shorter than 16 characters; use a long random one (e.g. `openssl rand -hex 32`)');
  }
  const password = secret('password', 'password_env');
  if ((file.password !== undefined || file.password_env !== undefined) && file.username === undefined) {
    problems.push('cluster.username: missing; a password is set, so name the etcd user too');
  }
  if (file.username !== undefined && file.password === undefined && file.password_env === undefined) {
    problems.push('cluster.password_env: missing; username is set, so give the etcd password (password_env = "ETCD_PASSWORD")');
  }
  if ((file.cert_file === undefined) !== (file.key_file === undefined)) {
    problems.push('cluster.cert_file and cluster.key_file: set both (a client certificate needs its key) or neither');
  }
  const tlsFiles = file.ca_file !== undefined || file.cert_file !== undefined;
  const plain = (file.endpoints ?? []).filter((e) => e.startsWith('http://'));
  const secure = (file.endpoints ?? []).filter((e) => e.startsWith('https://'));
  if (plain.length > 0 && secure.length > 0) problems.push('cluster.endpoints: mixes http:// and https://; use one scheme for all members');
  if (tlsFiles && plain.length > 0) problems.push(`cluster.endpoints: TLS files are set but ${plain[0]} is http://; use https:// endpoints`);
  if (problems.length > 0) fail(problems);

  const config: ClusterConfig = {
    endpoints: file.endpoints!,
    nodeName: nodeName!,
    advertiseUrl: file.advertise_url!.replace(/\/$/, ''),
    token: token!,
    leaseTtlS: file.lease_ttl_s ?? CLUSTER_DEFAULTS.lease_ttl_s,
    publishIntervalMs: file.publish_interval_ms ?? CLUSTER_DEFAULTS.publish_interval_ms,
    keyPrefix: file.key_prefix ?? CLUSTER_DEFAULTS.key_prefix,
    callTimeoutMs: file.call_timeout_ms ?? CLUSTER_DEFAULTS.call_timeout_ms,
  };
  if (tlsFiles) config.tls = { caFile: file.ca_file, certFile: file.cert_file, keyFile: file.key_file };
  if (file.username !== undefined && password !== undefined) config.auth = { username: file.username, password };
  return config;
}
