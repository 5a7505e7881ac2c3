import { describe, expect, it } from 'vitest';
import { FirecrackerSpec, loadFirecrackerSpec, toJsonSchema, validateRequest } from './spec.js';

const messages = (method: string, path: string, body: unknown) => validateRequest(method, path, body).map((v) => v.message);

describe('FirecrackerSpec.findOperation', () => {
  const spec = loadFirecrackerSpec();

  it('matches path templates and decodes their parameters', () => {
    expect(spec.findOperation('PUT', '/drives/rootfs')).toMatchObject({
      operation: { operationId: 'putGuestDriveByID', path: '/drives/{drive_id}', bodyType: 'Drive' },
      pathParams: { drive_id: 'rootfs' },
    });
    expect(spec.findOperation('patch', '/network-interfaces/eth0')?.operation.operationId).toBe('patchGuestNetworkInterfaceByID');
    expect(spec.findOperation('GET', '/')?.operation.operationId).toBe('describeInstance');
    expect(spec.findOperation('GET', '/machine-config/')?.operation.operationId).toBe('getMachineConfiguration');
  });

  it('finds nothing for unknown paths, methods, or extra segments', () => {
    expect(spec.findOperation('DELETE', '/drives/rootfs')).toBeNull();
    expect(spec.findOperation('GET', '/drives/rootfs')).toBeNull();
    expect(spec.findOperation('PUT', '/drives/a/b')).toBeNull();
    expect(spec.findOperation('PUT', '/snapshot/restore')).toBeNull();
  });

  it('finds every operation of the spec from a concrete path', () => {
    for (const op of spec.operations) {
      const path = op.path.replace(/\{[^}]+\}/g, 'x1');
      expect(spec.findOperation(op.method, path)?.operation.operationId, `${op.method} ${path}`).toBe(op.operationId);
    }
  });
});

describe('validateRequest', () => {
  it('accepts valid bodies, including nested $refs (rate limiters)', () => {
    expect(
      validateRequest('PUT', '/drives/rootfs', {
        drive_id: 'rootfs',
        path_on_host: '/img/rootfs.ext4',
        is_root_device: true,
        is_read_only: false,
        rate_limiter: { bandwidth: { size: 10_485_760, refill_time: 100 }, ops: { size: 1000, one_time_burst: 100, refill_time: 100 } },
      }),
    ).toEqual([]);
    expect(validateRequest('PUT', '/mmds', { latest: { 'meta-data': { 'instance-id': 'i-1' } } })).toEqual([]);
  });

  it('reports schema violations with a JSON pointer', () => {
    const [v] = validateRequest('PUT', '/machine-config', { vcpu_count: 0, mem_size_mib: 128 });
    expect(v).toMatchObject({ kind: 'schema', operationId: 'putMachineConfiguration', pointer: '/vcpu_count', message: '/vcpu_count must be >= 1' });
    expect(messages('PUT', '/boot-source', { boot_args: 'console=ttyS0' })).toEqual(["(body) must have required property 'kernel_image_path'"]);
    expect(messages('PUT', '/drives/rootfs', { drive_id: 'rootfs', is_root_device: true, rate_limiter: { ops: { size: 1 } } })).toEqual([
      "/rate_limiter/ops must have required property 'refill_time'",
    ]);
    expect(messages('PATCH', '/vm', { state: 'Stopped' })).toEqual(['/state must be equal to one of the allowed values ("Paused", "Resumed")']);
  });

  it('rejects fields the spec does not list, as Firecracker does', () => {
    expect(messages('PUT', '/machine-config', { vcpu_count: 1, mem_size_mib: 128, vcpus: 2 })).toEqual(['(body) must NOT have additional properties (vcpus)']);
    const lenient = new FirecrackerSpec(
      'swagger: "2.0"\ninfo: {version: "1"}\npaths: {/x: {put: {operationId: putX, parameters: [{in: body, name: b, required: true, schema: {$ref: "#/definitions/X"}}], responses: {204: {description: ok}}}}}\ndefinitions: {X: {type: object, properties: {a: {type: string}}}}\n',
      { rejectUnknownFields: false },
    );
    expect(lenient.validateRequest('PUT', '/x', { a: 'y', b: 1 })).toEqual([]);
  });

  it('checks the MMDS address, whose spec "format" is a regular expression', () => {
    expect(validateRequest('PUT', '/mmds/config', { network_interfaces: ['eth0'], ipv4_address: '169.254.169.254' })).toEqual([]);
    expect(validateRequest('PUT', '/mmds/config', { network_interfaces: ['eth0'], ipv4_address: '10.0.0.1' })).toHaveLength(1);
  });

  it('accepts a partial PATCH /machine-config (Firecracker parses it as MachineConfigUpdate)', () => {
    expect(validateRequest('PATCH', '/machine-config', { mem_size_mib: 256 })).toEqual([]);
    expect(validateRequest('PUT', '/machine-config', { mem_size_mib: 256 })).toHaveLength(1);
  });

  it('reports missing, unexpected bodies and unknown operations', () => {
    expect(validateRequest('PUT', '/boot-source', undefined)).toMatchObject([{ kind: 'missing-body' }]);
    expect(validateRequest('GET', '/version', {})).toMatchObject([{ kind: 'unexpected-body' }]);
    expect(validateRequest('PATCH', '/balloon/hinting/stop', undefined)).toEqual([]);
    expect(validateRequest('POST', '/actions', {})).toMatchObject([{ kind: 'unknown-operation', operationId: null }]);
  });

  it('accepts both snapshot memory backends and network overrides', () => {
    for (const backend_type of ['File', 'Uffd']) {
      expect(
        validateRequest('PUT', '/snapshot/load', {
          snapshot_path: '/s/vm.snap',
          mem_backend: { backend_type, backend_path: '/s/mem' },
          track_dirty_pages: true,
          resume_vm: true,
          network_overrides: [{ iface_id: 'eth0', host_dev_name: 'tap7' }],
        }),
      ).toEqual([]);
    }
    expect(validateRequest('PUT', '/snapshot/load', { snapshot_path: '/s', mem_backend: { backend_type: 'Http', backend_path: '/m' } })).toHaveLength(1);
  });
});

describe('validateResponse', () => {
  const spec = loadFirecrackerSpec();
  it('checks success and error bodies against the status they came with', () => {
    expect(spec.validateResponse('GET', '/', 200, { app_name: 'Firecracker', id: 'a', state: 'Running', vmm_version: '1.12.0' })).toEqual([]);
    expect(spec.validateResponse('GET', '/', 200, { app_name: 'Firecracker', id: 'a', state: 'Booting', vmm_version: '1' })).toHaveLength(1);
    expect(spec.validateResponse('PUT', '/boot-source', 400, { fault_message: 'no' })).toEqual([]);
    expect(spec.validateResponse('PUT', '/boot-source', 204, undefined)).toEqual([]);
  });
});

describe('toJsonSchema', () => {
  it('drops Swagger-only keywords and rewrites draft-4 exclusive bounds and $refs', () => {
    expect(
      toJsonSchema(
        {
          type: 'object',
          'x-go-name': 'A',
          example: 'x',
          properties: { n: { type: 'integer', minimum: 0, exclusiveMinimum: true, readOnly: true }, r: { $ref: '#/definitions/B' } },
        },
        true,
      ),
    ).toEqual({
      type: 'object',
      properties: { n: { type: 'integer', exclusiveMinimum: 0 }, r: { $ref: 'firecracker.json#/definitions/B' } },
      additionalProperties: false,
    });
  });
});
