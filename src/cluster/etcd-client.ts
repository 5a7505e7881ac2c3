/**
 * The etcd client of a node: built from `ClusterConfig` (TLS files read here,
 * auth), with every unary call bounded by `call_timeout_ms`, and `bounded()`,
 * which turns a slow or failed etcd call into CLUSTER_UNAVAILABLE naming the
 * operation. Streams (watch, keepalive) are not bounded by the default call
 * options; their users bound them.
 */
import { readFileSync } from 'node:fs';
import { Etcd3, type IOptions } from 'etcd3';
import { ClusterUnavailableError, ConfigInvalidError, TfcError } from '../errors/index.js';
import type { ClusterConfig } from './config.js';

function readPem(key: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ConfigInvalidError(`cluster.${key}: cannot read ${file} (${(err as Error).message}); point it at a readable PEM file`, {
      cause: err,
      details: { key: `cluster.${key}`, file },
    });
  }
}

/**
 * Creates the client (no connection is made until the first call). Throws
 * CONFIG_INVALID when a TLS file cannot be read. Close it with `close()`.
 */
export function createEtcdClient(config: Pick<ClusterConfig, 'endpoints' | 'tls' | 'auth' | 'callTimeoutMs'>): Etcd3 {
  const options: IOptions = {
    hosts: config.endpoints,
    dialTimeout: config.callTimeoutMs,
    // A deadline on every unary call: etcd without quorum accepts a request
    // and never answers it, which would otherwise hang the caller.
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + config.callTimeoutMs }),
  };
  if (config.tls) {
    const { caFile, certFile, keyFile } = config.tls;
    options.credentials = {
      rootCertificate: caFile ? readPem('ca_file', caFile) : Buffer.alloc(0),
      ...(certFile ? { certChain: readPem('cert_file', certFile) } : {}),
      ...(keyFile ? { privateKey: readPem('key_file', keyFile) } : {}),
    };
  }
  if (config.auth)
    options.auth = { username: config.auth.username, password: config.auth.password, callOptions: () => ({ deadline: Date.now() + config.callTimeoutMs }) };
  return new Etcd3(options);
}

/**
 * Awaits `promise` for at most `timeoutMs`. A timeout or an etcd error
 * becomes CLUSTER_UNAVAILABLE naming `operation`; a TfcError passes through.
 * The timer is cleared either way (nothing leaks).
 */
export async function bounded<T>(promise: Promise<T>, timeoutMs: number, operation: string, endpoints: readonly string[] = []): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new ClusterUnavailableError(
            `etcd did not answer ${operation} within ${timeoutMs} ms; check that a majority of the etcd members is up (etcdctl endpoint health --cluster)`,
            {
              details: { operation, endpoints: [...endpoints], timeout_ms: timeoutMs },
            },
          ),
        ),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } catch (err) {
    if (err instanceof TfcError) throw err;
    throw new ClusterUnavailableError(`etcd failed ${operation}: ${(err as Error).message}; check the etcd members and cluster.endpoints`, {
      cause: err,
      details: { operation, endpoints: [...endpoints], timeout_ms: timeoutMs },
    });
  } finally {
    clearTimeout(timer);
    // The losing promise may still reject later: do not let that surface as unhandled.
    promise.catch(() => undefined);
  }
}
