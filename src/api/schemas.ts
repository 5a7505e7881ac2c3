/**
 * JSON schemas of the REST API: Fastify validates requests with them and
 * @fastify/swagger turns them into GET /v1/openapi.json. The CLI prints the
 * same shapes with --json.
 */
export const ErrorBody = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string' }, message: { type: 'string' }, details: { type: 'object', additionalProperties: true } },
    },
  },
} as const;

export const Phase = { type: 'object', required: ['name', 'ms'], properties: { name: { type: 'string' }, ms: { type: 'number' } } } as const;

export const VmBody = {
  type: 'object',
  required: ['id', 'state', 'profile', 'driver'],
  properties: {
    id: { type: 'string' },
    pool: { type: ['string', 'null'] },
    profile: { type: 'string' },
    state: { type: 'string', enum: ['creating', 'booting', 'running', 'paused', 'stopping', 'stopped', 'failed'] },
    driver: { type: 'string' },
    accel: { type: 'string' },
    created_by: { type: 'string', enum: ['boot', 'restore'] },
    allocated: { type: 'boolean' },
    owner: { type: ['string', 'null'] },
    uses: { type: 'integer' },
    phases: { type: 'array', items: Phase },
    network: {
      type: ['object', 'null'],
      properties: { host_address: { type: 'string' }, guest_ip: { type: 'string' }, netns: { type: 'string' } },
    },
    created_at: { type: 'string' },
  },
} as const;

export const PoolBody = {
  type: 'object',
  required: ['name', 'profile', 'min', 'max', 'target', 'ready', 'booting', 'allocated'],
  properties: {
    name: { type: 'string' },
    profile: { type: 'string' },
    mode: { type: 'string' },
    strategy: { type: 'string' },
    prewarm_state: { type: 'string' },
    min: { type: 'integer' },
    max: { type: 'integer' },
    target: { type: 'integer' },
    ready: { type: 'integer' },
    booting: { type: 'integer' },
    allocated: { type: 'integer' },
    demand_per_s: { type: 'number' },
    refill_ms: { type: ['number', 'null'] },
    last_error: { type: ['string', 'null'] },
  },
} as const;

export const AllocateRequest = {
  type: 'object',
  additionalProperties: false,
  properties: {
    owner: { type: 'string', minLength: 1, maxLength: 128, description: 'reuse pools: released VMs are kept for this owner' },
    timeout_ms: { type: 'integer', minimum: 0, maximum: 600000, description: 'wait this long when the pool is empty (default: the pool allocate_timeout_ms)' },
  },
} as const;

export const ExecRequest = {
  type: 'object',
  required: ['cmd'],
  additionalProperties: false,
  properties: {
    cmd: { type: 'array', minItems: 1, items: { type: 'string' }, description: 'argv; no shell' },
    stdin: { type: 'string' },
    env: { type: 'object', additionalProperties: { type: 'string' } },
    cwd: { type: 'string' },
    timeout_ms: { type: 'integer', minimum: 0, maximum: 86400000 },
  },
} as const;

export const ExecResponse = {
  type: 'object',
  required: ['exit_code', 'stdout', 'stderr', 'duration_ms'],
  properties: {
    exit_code: { type: ['integer', 'null'] },
    signal: { type: ['string', 'null'] },
    timed_out: { type: 'boolean' },
    stdout: { type: 'string' },
    stderr: { type: 'string' },
    stdout_truncated: { type: 'boolean' },
    stderr_truncated: { type: 'boolean' },
    duration_ms: { type: 'number' },
  },
} as const;

export const VmIdParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^vm-[0-9a-f]{12}$' } } } as const;
export const PoolNameParams = { type: 'object', required: ['name'], properties: { name: { type: 'string' } } } as const;
export const FileQuery = {
  type: 'object',
  required: ['path'],
  properties: { path: { type: 'string', pattern: '^/', description: 'absolute path in the guest' }, mode: { type: 'string', pattern: '^[0-7]{3,4}$' } },
} as const;

export const GuestNetworkRequest = {
  type: 'object',
  required: ['address', 'prefix', 'gateway'],
  additionalProperties: false,
  properties: {
    address: { type: 'string', pattern: '^\\d{1,3}(\\.\\d{1,3}){3}$' },
    prefix: { type: 'integer', minimum: 1, maximum: 32 },
    gateway: { type: 'string', pattern: '^\\d{1,3}(\\.\\d{1,3}){3}$' },
  },
} as const;
