// The zod schema of tfc.toml: the single source of truth for which keys exist,
// their types, ranges and the "what is allowed" text of each error message.
// Every key is optional here; defaults are applied later (defaults.ts) so that
// each effective value can report whether it came from the file or not.
import * as z from 'zod';
import { ClusterFileSchema } from '../cluster/config.js';
import { intIn } from '../zod-rules.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'silent'] as const;
export const DRIVERS = ['qemu', 'firecracker'] as const;
export const QEMU_ACCELS = ['auto', 'kvm', 'tcg'] as const;
/** `vmm.qemu.thp`: keep the host's transparent huge page setting for QEMU, or disable it in QEMU's process (docs/density.md). */
export const QEMU_THP_MODES = ['inherit', 'never'] as const;
/** Firecracker logger levels (its `Logger.level`, written in lower case in tfc.toml). */
export const FIRECRACKER_LOG_LEVELS = ['error', 'warning', 'info', 'debug', 'trace', 'off'] as const;
/** Where Firecracker writes its metrics lines: a regular file read after each flush, or a named pipe read as lines arrive. */
export const FIRECRACKER_METRICS_SINKS = ['file', 'fifo'] as const;
/** `--cgroup FILE=VALUE` of the jailer, e.g. `memory.max=536870912` or `cpu.max=50000 100000`. */
export const JAILER_CGROUP_PATTERN = /^[a-z][a-z0-9_]*\.[a-z0-9_.]+=\S.*$/;
/** `--resource-limit RESOURCE=VALUE` of the jailer: the two resources it knows. */
export const JAILER_RESOURCE_LIMIT_PATTERN = /^(fsize|no-file)=[0-9]+$/;
/** A relative cgroup path without `..` (the jailer's `--parent-cgroup`); empty = the jailer's default. */
export const JAILER_PARENT_CGROUP_PATTERN = /^$|^(?!.*(^|\/)\.\.?(\/|$))[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/;
/** Images that exist without a config file (defaults.ts says what is in them); "minimal" has no settings. */
export const BUILTIN_IMAGES = ['minimal', 'python', 'node'] as const;
/**
 * Names of images: built-in, `[images.NAME]` or made by `tfc image build
 * --from-oci PATH --name NAME`. A profile may name any image that matches;
 * one that is not built fails at use (IMAGE_NOT_FOUND with the build command).
 */
export const IMAGE_NAME_PATTERN = /^[a-z][a-z0-9_-]{0,31}$/;
/** Keys of `[images]` that are settings, not image names. */
export const IMAGES_TABLE_KEYS = ['kernel_package'] as const;
/** Kinds an `[images.NAME]` table may have ("minimal" is only the built-in image). */
export const IMAGE_KINDS = ['debian', 'oci'] as const;
/** mmdebstrap --variant values. */
export const MMDEBSTRAP_VARIANTS = ['extract', 'custom', 'essential', 'apt', 'required', 'minbase', 'buildd', 'important', 'debootstrap', 'standard'] as const;
/** A Debian package name, optionally pinned: `curl`, `curl=7.88.1-10+deb12u8`, `curl/bookworm-backports`. */
export const DEBIAN_PACKAGE_PATTERN = /^[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+~:-]+|\/[a-z0-9][a-z0-9.-]*)?$/;
/** A Debian suite or codename: bookworm, stable, trixie, bookworm-backports. */
export const DEBIAN_SUITE_PATTERN = /^[a-z][a-z0-9.-]{0,63}$/;
export const MIRROR_PATTERN = /^(https?|file):\/\/[^\s]+$/;
/** Fields of `[images.NAME]` that only one kind uses. */
export const IMAGE_KIND_FIELDS: Record<(typeof IMAGE_KINDS)[number], readonly string[]> = {
  debian: ['suite', 'variant', 'packages', 'mirror'],
  oci: ['source', 'ref'],
};
export const BUILTIN_PROFILE = 'minimal';
/** Profiles that exist without a config file, `minimal` first (defaults.ts has their fields). */
export const BUILTIN_PROFILES = ['minimal', 'python', 'node'] as const;
/** Boot optimisation levels (src/vm/boot-levels.ts says what each changes). */
export const BOOT_LEVELS = ['standard', 'fast', 'ultrafast', 'sub2second', 'instant'] as const;
export const POOL_MODES = ['fresh', 'reuse'] as const;
export const PREWARM_STATES = ['running', 'paused'] as const;
export const POOL_STRATEGIES = ['first-available', 'best-performance', 'least-recently-used', 'round-robin', 'weighted-random'] as const;
/** The pool that always exists, serving the default profile. */
export const BUILTIN_POOL = 'default';
/**
 * vm_type aliases that exist without a config file: the names Terraphim's
 * own defaults send (`VmExecutionConfig::default().default_vm_type` and the
 * runners' defaults are "focal-optimized"; fcctl-web's VM type and
 * `FCCTL_VM_TYPE` examples use "bionic-test"). They go to the built-in pool,
 * the one a request without a choice gets. `[terraphim.vm_types]` may remap them.
 */
export const BUILTIN_VM_TYPES: Readonly<Record<string, string>> = { 'focal-optimized': BUILTIN_POOL, 'bionic-test': BUILTIN_POOL };
export const LISTEN_PATTERN = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/;
export const PROFILE_NAME_PATTERN = /^[a-z][a-z0-9_-]{0,31}$/;
export const KERNEL_PACKAGE_PATTERN = /^linux-image-[0-9].*-cloud-amd64$/;
/** A Terraphim vm_type alias (`[terraphim.vm_types]` key): what the Rust client sends as vm_type, e.g. "focal-optimized". */
export const VM_TYPE_ALIAS_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

// Each helper puts the "allowed" text on the schema itself: zod 4 uses a
// schema-level `error` for its checks too (int, min, max), so every issue of a
// field carries the same readable rule.
function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, { error: `must be one of ${values.map((v) => JSON.stringify(v)).join(', ')}` });
}

function nonEmptyString(what: string) {
  return z.string({ error: `must be a non-empty string (${what})` }).min(1);
}

// Every key of every table is optional in the file.
function table<S extends z.ZodRawShape>(shape: S, error = 'must be a table') {
  return z.strictObject(shape, { error }).partial();
}

function isPlainTable(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date);
}

export const ProfileFileSchema = table(
  {
    driver: oneOf(DRIVERS),
    image: z
      .string({
        error: `must be an image name matching ${IMAGE_NAME_PATTERN.source}: "minimal", "python", "node", an [images.NAME] or an image built with --from-oci`,
      })
      .regex(IMAGE_NAME_PATTERN),
    vcpus: intIn(1, 32),
    memory_mib: intIn(64, 65536),
    kernel_args: z.string({ error: 'must be a string (extra kernel command line)' }),
    boot_timeout_ms: intIn(1000, 600_000),
    boot_level: oneOf(BOOT_LEVELS),
    network: z.boolean({ error: 'must be true or false (give VMs of this profile a network device and NAT)' }),
    egress_allow: z.array(egressRule(), { error: 'must be an array of "CIDR" or "CIDR:PORT" strings' }),
    egress_deny: z.array(egressRule(), { error: 'must be an array of "CIDR" or "CIDR:PORT" strings' }),
    bandwidth_mbit: intIn(0, 100_000),
    warmup: z
      .array(z.string({ error: 'must be a string' }).max(4096), {
        error: 'must be an argv array of strings run in the guest before the golden snapshot, e.g. ["python3", "-c", "import json"] ([] = none)',
      })
      .max(256)
      .refine((argv) => argv.length === 0 || argv[0] !== ''),
    disk_mib: intIn(0, 1_048_576),
    standby_vmms: intIn(0, 8),
    target_ms: intIn(0, 600_000),
  },
  'must be a profile table [profiles.NAME]; profile fields such as vcpus go inside one',
);

/** "10.0.0.0/8", "1.2.3.4/32:443" or "0.0.0.0/0:53" (docs/networking.md); checked fully by the net module. */
function egressRule() {
  return z.string({ error: 'must be "CIDR" or "CIDR:PORT", e.g. "10.0.0.0/8" or "203.0.113.0/24:443"' }).regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}(:\d{1,5})?$/);
}

export const ImageFileSchema = table(
  {
    kind: oneOf(IMAGE_KINDS),
    suite: z.string({ error: 'must be a Debian suite or codename such as "bookworm"' }).regex(DEBIAN_SUITE_PATTERN),
    variant: oneOf(MMDEBSTRAP_VARIANTS),
    packages: z
      .array(z.string({ error: 'must be a Debian package name such as "python3" (optionally "NAME=VERSION")' }).regex(DEBIAN_PACKAGE_PATTERN), {
        error: 'must be an array of Debian package names, e.g. ["python3", "curl"]',
      })
      .max(1000),
    mirror: z.string({ error: 'must be an http(s):// or file:// URL of a Debian mirror, e.g. "http://deb.debian.org/debian"' }).regex(MIRROR_PATTERN),
    source: nonEmptyString('path to an OCI image layout directory or an OCI/docker-archive tar'),
    ref: z
      .string({ error: 'must be a string naming a manifest of the layout (its org.opencontainers.image.ref.name), e.g. "latest" ("" = the only one)' })
      .max(256),
    extra_mib: intIn(0, 1_048_576),
  },
  'must be an image table [images.NAME] (with kind = "debian" or "oci"); the only plain key of [images] is kernel_package',
);

export const PoolFileSchema = table(
  {
    profile: z.string({ error: 'must be a string naming a profile' }),
    min: intIn(0, 256),
    max: intIn(1, 256),
    target: intIn(0, 256),
    mode: oneOf(POOL_MODES),
    prewarm_state: oneOf(PREWARM_STATES),
    rewarm: z.boolean({ error: "must be true or false (run the profile's warmup in each new pool VM before it is offered)" }),
    refill_concurrency: intIn(1, 32),
    strategy: oneOf(POOL_STRATEGIES),
    strategy_seed: intIn(0, 2 ** 31 - 1),
    max_uses: intIn(1, 1_000_000),
    max_age_ms: intIn(1000, 86_400_000),
    health_interval_ms: intIn(100, 3_600_000),
    allocate_timeout_ms: intIn(0, 600_000),
    skip_ping_within_ms: intIn(0, 3_600_000),
    lease_ms: intIn(1000, 604_800_000),
    max_lease_ms: intIn(1000, 604_800_000),
  },
  'must be a pool table [pools.NAME]; pool fields such as max go inside one',
);

/** Rules of the performance monitor (docs/alerts.md has what each measures). */
export const ALERT_RULES = [
  'boot_time',
  'restore_time',
  'allocation_p99',
  'pool_empty',
  'allocation_failure_ratio',
  'vm_failure_rate',
  'host_memory_low',
  'disk_free_low',
] as const;
/** Event types a webhook may subscribe to: the EVENT_TYPES of src/events (a test keeps them equal). */
export const WEBHOOK_EVENT_TYPES = ['vm.state', 'vm.ready', 'vm.failed', 'allocation', 'allocation.failed', 'release', 'pool', 'alert'] as const;
export const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

const AlertRuleFileSchema = table(
  {
    threshold: z.number({ error: 'must be a number >= 0 (its unit depends on the rule: see docs/alerts.md)' }).min(0).max(1e12),
    for_ms: intIn(0, 86_400_000),
    enabled: z.boolean({ error: 'must be true or false' }),
  },
  'must be a rule table [alerts.rules.NAME] with threshold, for_ms, enabled',
);

const AlertWebhookFileSchema = table(
  {
    url: z
      .string({ error: 'must be an http:// or https:// URL, e.g. "https://hooks.example.com/tfc"' })
      .refine((v) => /^https?:\/\/[^\s/]+/.test(v) && URL.canParse(v)),
    secret: z.string({ error: 'must be a non-empty string (the HMAC-SHA256 key)' }).min(1).max(4096),
    secret_env: z.string({ error: 'must be an environment variable name holding the HMAC key, e.g. "TFC_WEBHOOK_SECRET"' }).regex(ENV_NAME_PATTERN),
    events: z
      .array(oneOf(WEBHOOK_EVENT_TYPES), { error: `must be an array of event types (${WEBHOOK_EVENT_TYPES.join(', ')})` })
      .min(1)
      .max(WEBHOOK_EVENT_TYPES.length),
    timeout_ms: intIn(100, 60_000),
    max_attempts: intIn(1, 10),
    queue_size: intIn(1, 10_000),
  },
  'must be a webhook table [[alerts.webhooks]] with url = "https://..."',
);

export const ConfigFileSchema = table({
  data_dir: nonEmptyString('a directory path'),
  log_level: oneOf(LOG_LEVELS),
  default_profile: z.string({ error: 'must be a string naming a profile' }),
  vmm: table({
    default_driver: oneOf(DRIVERS),
    stop_timeout_ms: intIn(0, 600_000),
    console_log_max_bytes: z
      .number({ error: 'must be an integer number of bytes from 65536 (64 KiB) to 1099511627776 (1 TiB), e.g. 8388608 for 8 MiB' })
      .int()
      .min(65_536)
      .max(2 ** 40),
    nice: intIn(0, 19),
    qemu: table({
      binary: nonEmptyString('a command name or path'),
      accel: oneOf(QEMU_ACCELS),
      tcg_tb_size_mib: intIn(0, 2048),
      mem_merge: z.boolean({ error: 'must be true or false' }),
      thp: oneOf(QEMU_THP_MODES),
      // Deprecated name of vmm.stop_timeout_ms (resolve.ts maps it).
      stop_timeout_ms: intIn(0, 600_000),
    }),
    firecracker: table({
      binary: nonEmptyString('a command name or path'),
      api_timeout_ms: intIn(100, 600_000),
      log_level: oneOf(FIRECRACKER_LOG_LEVELS),
      metrics_sink: oneOf(FIRECRACKER_METRICS_SINKS),
      jailer: table({
        enabled: z.boolean({ error: 'must be true or false' }),
        binary: nonEmptyString('a command name or path'),
        uid: intIn(0, 4_294_967_294),
        gid: intIn(0, 4_294_967_294),
        chroot_base_dir: z.string({ error: 'must be an absolute directory path, e.g. "/srv/jailer"' }).refine((v) => v.startsWith('/') && v.length > 1),
        cgroup_version: intIn(1, 2),
        parent_cgroup: z
          .string({ error: 'must be a relative cgroup path without "..", e.g. "tfc" or "machines/tfc" ("" = the jailer\'s default)' })
          .regex(JAILER_PARENT_CGROUP_PATTERN),
        cgroups: z.array(z.string({ error: 'must be "FILE=VALUE", e.g. "memory.max=536870912"' }).regex(JAILER_CGROUP_PATTERN), {
          error: 'must be an array of "FILE=VALUE" strings, e.g. ["memory.max=536870912", "cpu.max=100000 100000"]',
        }),
        resource_limits: z.array(z.string({ error: 'must be "fsize=N" or "no-file=N"' }).regex(JAILER_RESOURCE_LIMIT_PATTERN), {
          error: 'must be an array of "fsize=N" / "no-file=N" strings',
        }),
        netns: z.string({ error: 'must be a network namespace path, e.g. "/var/run/netns/tfc" ("" = none)' }).refine((v) => v === '' || v.startsWith('/')),
      }),
    }),
  }),
  // Any other key of [images] is an image table [images.NAME].
  images: table({
    kernel_package: z
      .string({ error: 'must be "auto" or a Debian package name matching ^linux-image-[0-9].*-cloud-amd64$' })
      .refine((v) => v === 'auto' || KERNEL_PACKAGE_PATTERN.test(v)),
  }).catchall(ImageFileSchema),
  profiles: z.record(z.string(), ProfileFileSchema, { error: 'must be a table of profiles' }),
  pools: z.record(z.string(), PoolFileSchema, { error: 'must be a table of pools' }),
  network: table({
    range: z.string({ error: 'must be an IPv4 CIDR such as "10.200.0.0/16"' }).regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/),
    prefix_per_vm: intIn(24, 30),
    exposed_ports: z.array(intIn(1, 65535), { error: 'must be an array of TCP port numbers' }),
    uplink: z.string({ error: 'must be an interface name, or "" for the default route\'s' }).max(15),
    masquerade: z.boolean({ error: 'must be true or false' }),
  }),
  api: table({
    listen: z
      .string({ error: 'must be "HOST:PORT", e.g. "127.0.0.1:7070"' })
      .refine((v) => LISTEN_PATTERN.test(v) && Number(LISTEN_PATTERN.exec(v)![2]) <= 65535),
    max_exec_timeout_ms: intIn(1000, 86_400_000),
    request_timeout_ms: intIn(1000, 86_400_000),
    max_upload_bytes: intIn(1, 2 ** 40),
    max_download_bytes: intIn(1, 2 ** 40),
  }),
  terraphim: table({
    vm_types: z.record(z.string(), z.string({ error: 'must be a string naming a pool or a profile served by a pool, e.g. "default"' }).min(1), {
      error: 'must be a table of vm_type aliases: [terraphim.vm_types] with lines such as focal-optimized = "default"',
    }),
    default_vm_type: z
      .string({ error: 'must be a string naming a vm_type: an alias of [terraphim.vm_types], a pool, or a profile served by a pool' })
      .min(1)
      .max(128),
    history_max_entries: intIn(1, 1000),
    history_max_vms: intIn(1, 4096),
  }),
  alerts: table({
    enabled: z.boolean({ error: 'must be true or false (run the performance monitor in tfc serve)' }),
    eval_interval_ms: intIn(100, 600_000),
    rules: table(
      {
        boot_time: AlertRuleFileSchema,
        restore_time: AlertRuleFileSchema,
        allocation_p99: AlertRuleFileSchema,
        pool_empty: AlertRuleFileSchema,
        allocation_failure_ratio: AlertRuleFileSchema,
        vm_failure_rate: AlertRuleFileSchema,
        host_memory_low: AlertRuleFileSchema,
        disk_free_low: AlertRuleFileSchema,
      } satisfies Record<(typeof ALERT_RULES)[number], unknown>,
      'must be a table of rules [alerts.rules.NAME]',
    ),
    webhooks: z.array(AlertWebhookFileSchema, { error: 'must be an array of tables [[alerts.webhooks]]' }).max(16),
  }),
  security: table({
    drop_privileges: z.boolean({ error: 'must be true or false (run each VMM as its own unprivileged uid, QEMU under -sandbox)' }),
    uid_range_start: intIn(1000, 4_000_000_000),
    uid_count: intIn(1, 100_000_000),
  }),
  // [cluster]: cluster mode (docs/cluster.md); absent = a single host.
  cluster: ClusterFileSchema.optional(),
});

export type ConfigFile = z.output<typeof ConfigFileSchema>;

/**
 * Checks that span keys, kept out of zod on purpose: zod 4 skips refinements
 * once a value inside failed a type check, and one load must report every
 * problem. Runs on the raw (unvalidated) document, so it checks shapes itself.
 * Profile names are checked here rather than by a record key schema so that
 * a badly named profile still has its fields validated.
 */
export function crossKeyIssues(doc: Record<string, unknown>): Array<{ path: string[]; message: string }> {
  const issues: Array<{ path: string[]; message: string }> = [];
  const profiles = doc.profiles;
  if (isPlainTable(profiles)) {
    for (const name of Object.keys(profiles)) {
      if (!PROFILE_NAME_PATTERN.test(name)) {
        issues.push({
          path: ['profiles', name],
          message: `invalid profile name ${JSON.stringify(name)}: must match ${PROFILE_NAME_PATTERN.source} (lowercase letter first, then up to 31 of a-z 0-9 _ -)`,
        });
      }
    }
  }
  issues.push(...imageIssues(doc.images));
  const available = profileNamesIn(profiles);
  const pools = doc.pools;
  if (isPlainTable(pools)) {
    for (const [name, pool] of Object.entries(pools)) {
      if (!PROFILE_NAME_PATTERN.test(name)) {
        issues.push({ path: ['pools', name], message: `invalid pool name ${JSON.stringify(name)}: must match ${PROFILE_NAME_PATTERN.source}` });
      }
      if (!isPlainTable(pool)) continue;
      if (typeof pool.profile === 'string' && !available.includes(pool.profile)) {
        issues.push({ path: ['pools', name, 'profile'], message: `no profile named ${JSON.stringify(pool.profile)}; available: ${available.join(', ')}` });
      }
      const n = (k: string) => (typeof pool[k] === 'number' ? (pool[k] as number) : undefined);
      const [min, max, target] = [n('min'), n('max'), n('target')];
      if (min !== undefined && max !== undefined && min > max) issues.push({ path: ['pools', name, 'min'], message: `must not exceed max (${max})` });
      if (target !== undefined && max !== undefined && target > max) issues.push({ path: ['pools', name, 'target'], message: `must not exceed max (${max})` });
      if (target !== undefined && min !== undefined && target < min)
        issues.push({ path: ['pools', name, 'target'], message: `must not be below min (${min})` });
      const [lease, maxLease] = [n('lease_ms'), n('max_lease_ms')];
      if (lease !== undefined && maxLease !== undefined && lease > maxLease)
        issues.push({ path: ['pools', name, 'lease_ms'], message: `must not exceed max_lease_ms (${maxLease})` });
    }
  }
  const wanted = doc.default_profile;
  if (typeof wanted === 'string' && !available.includes(wanted)) {
    issues.push({
      path: ['default_profile'],
      message: `no profile named ${JSON.stringify(wanted)}; available: ${available.join(', ')}`,
    });
  }
  issues.push(...terraphimIssues(doc));
  issues.push(...alertWebhookIssues(doc));
  return issues;
}

/** `[[alerts.webhooks]]`: each needs a url, and at most one of secret and secret_env. */
function alertWebhookIssues(doc: Record<string, unknown>): Array<{ path: string[]; message: string }> {
  const webhooks = isPlainTable(doc.alerts) ? doc.alerts.webhooks : undefined;
  if (!Array.isArray(webhooks)) return [];
  return webhooks.flatMap((w: unknown, i) => {
    if (!isPlainTable(w)) return [];
    const out: Array<{ path: string[]; message: string }> = [];
    if (w.url === undefined) out.push({ path: ['alerts', 'webhooks', String(i)], message: 'missing url: add url = "https://..." to this [[alerts.webhooks]]' });
    if (w.secret !== undefined && w.secret_env !== undefined)
      out.push({ path: ['alerts', 'webhooks', String(i), 'secret_env'], message: 'give either secret or secret_env, not both' });
    return out;
  });
}

/**
 * `[terraphim]`: alias names, and every alias and `default_vm_type` must
 * reach a pool (pools are fixed by the config, so a vm_type that reaches
 * none would fail every request that uses it).
 */
function terraphimIssues(doc: Record<string, unknown>): Array<{ path: string[]; message: string }> {
  const issues: Array<{ path: string[]; message: string }> = [];
  const terraphim = doc.terraphim;
  if (!isPlainTable(terraphim)) return issues;
  const pools = poolNamesIn(doc.pools);
  const served = servedProfiles(doc);
  const aliases = isPlainTable(terraphim.vm_types) ? terraphim.vm_types : {};
  const valid = `pools: ${pools.join(', ')}; profiles served by a pool: ${[...served].join(', ')}`;
  /** Why `target` reaches no pool, or undefined when it does. */
  const problem = (target: string): string | undefined => {
    if (pools.includes(target) || served.has(target)) return undefined;
    if (profileNamesIn(doc.profiles).includes(target))
      return `profile ${JSON.stringify(target)} is served by no pool: add one ([pools.NAME] with profile = ${JSON.stringify(target)}) or name a pool (${valid})`;
    return `no pool or profile is named ${JSON.stringify(target)} (${valid})`;
  };
  for (const [alias, target] of Object.entries(aliases)) {
    const path = ['terraphim', 'vm_types', alias];
    if (!VM_TYPE_ALIAS_PATTERN.test(alias)) {
      issues.push({
        path,
        message: `invalid vm_type alias ${JSON.stringify(alias)}: must match ${VM_TYPE_ALIAS_PATTERN.source} (letters, digits, . _ -; at most 128)`,
      });
    }
    const why = typeof target === 'string' ? problem(target) : undefined;
    if (why) issues.push({ path, message: `vm_type alias ${JSON.stringify(alias)} reaches no pool: ${why}` });
  }
  const wanted = terraphim.default_vm_type;
  if (typeof wanted === 'string' && !Object.hasOwn(aliases, wanted) && !Object.hasOwn(BUILTIN_VM_TYPES, wanted)) {
    const why = problem(wanted);
    const names = [...Object.keys(BUILTIN_VM_TYPES), ...Object.keys(aliases)].filter((a, i, all) => all.indexOf(a) === i);
    if (why) issues.push({ path: ['terraphim', 'default_vm_type'], message: `reaches no pool: ${why}; or name a vm_type alias (${names.join(', ')})` });
  }
  return issues;
}

/** Profiles some pool serves (a pool without `profile` serves default_profile). */
function servedProfiles(doc: Record<string, unknown>): Set<string> {
  const fallback = typeof doc.default_profile === 'string' ? doc.default_profile : BUILTIN_PROFILE;
  const pools = isPlainTable(doc.pools) ? doc.pools : {};
  const served = new Set<string>();
  for (const name of poolNamesIn(pools)) {
    const pool = pools[name];
    served.add(isPlainTable(pool) && typeof pool.profile === 'string' ? pool.profile : fallback);
  }
  return served;
}

/** Names, reserved names and kind-specific fields of `[images.NAME]` tables. */
function imageIssues(images: unknown): Array<{ path: string[]; message: string }> {
  const issues: Array<{ path: string[]; message: string }> = [];
  if (!isPlainTable(images)) return issues;
  for (const [name, def] of Object.entries(images)) {
    if ((IMAGES_TABLE_KEYS as readonly string[]).includes(name) || !isPlainTable(def)) continue;
    const at = (...rest: string[]) => ['images', name, ...rest];
    if (!IMAGE_NAME_PATTERN.test(name)) {
      issues.push({ path: at(), message: `invalid image name ${JSON.stringify(name)}: must match ${IMAGE_NAME_PATTERN.source}` });
      continue;
    }
    if (name === 'minimal') {
      issues.push({ path: at(), message: 'the built-in image "minimal" (busybox initramfs) has no settings; define an image under another name' });
      continue;
    }
    const builtinKind = builtinImageKind(name);
    const kind = typeof def.kind === 'string' ? def.kind : builtinKind;
    if (kind === undefined) {
      issues.push({ path: at(), message: 'missing kind: set kind = "debian" (with packages = [...]) or kind = "oci" (with source = "PATH")' });
      continue;
    }
    if (kind === 'oci' && def.source === undefined) {
      issues.push({ path: at(), message: 'kind = "oci" needs source = "PATH" (an OCI image layout directory or tar)' });
    }
    for (const [other, fields] of Object.entries(IMAGE_KIND_FIELDS)) {
      if (other === kind) continue;
      for (const field of fields) {
        if (def[field] !== undefined) {
          issues.push({ path: at(field), message: `applies only to kind = "${other}" images; this image has kind = "${kind}"` });
        }
      }
    }
  }
  return issues;
}

/** Kind of a built-in image that has settings ("python", "node" are Debian images). */
export function builtinImageKind(name: string): 'debian' | undefined {
  return name === 'python' || name === 'node' ? 'debian' : undefined;
}

/** The built-in images plus every image table in the file, built-in first. */
export function imageNamesIn(images: unknown): string[] {
  const names: string[] = [...BUILTIN_IMAGES];
  if (isPlainTable(images)) {
    for (const [name, def] of Object.entries(images)) {
      if (isPlainTable(def) && !names.includes(name) && !(IMAGES_TABLE_KEYS as readonly string[]).includes(name)) names.push(name);
    }
  }
  return names;
}

/** The built-in pool plus every pool table in the file, built-in first. */
export function poolNamesIn(pools: unknown): string[] {
  const names = [BUILTIN_POOL];
  if (isPlainTable(pools)) {
    for (const name of Object.keys(pools)) if (name !== BUILTIN_POOL) names.push(name);
  }
  return names;
}

/** The built-in profiles plus every profile table in the file, built-ins first. */
export function profileNamesIn(profiles: unknown): string[] {
  const names: string[] = [...BUILTIN_PROFILES];
  if (isPlainTable(profiles)) {
    for (const name of Object.keys(profiles)) if (!names.includes(name)) names.push(name);
  }
  return names;
}

function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  while (s instanceof z.ZodOptional) s = s.unwrap() as z.ZodType;
  return s;
}

/**
 * The schema of the value at `path` (snake_case segments; any segment under
 * `profiles` names a profile, any other key of `images` an image), or
 * undefined when no such key exists.
 */
export function schemaAt(path: readonly string[]): z.ZodType | undefined {
  let s: z.ZodType = ConfigFileSchema;
  for (const segment of path) {
    s = unwrap(s);
    if (s instanceof z.ZodObject) {
      const shape = s.shape as Record<string, z.ZodType>;
      const rest = (s.def as { catchall?: z.ZodType }).catchall;
      if (Object.hasOwn(shape, segment)) s = shape[segment];
      else if (rest && !(rest instanceof z.ZodNever) && !(rest instanceof z.ZodUnknown)) s = rest;
      else return undefined;
    } else if (s instanceof z.ZodRecord) {
      s = s.valueType as z.ZodType;
    } else if (s instanceof z.ZodArray && /^\d+$/.test(segment)) {
      // An element of an array of tables ([[alerts.webhooks]]).
      s = s.element as z.ZodType;
    } else {
      return undefined;
    }
  }
  return unwrap(s);
}

/** The keys a table at `path` accepts, in schema order; [] when `path` is not a fixed table. */
export function knownKeysAt(path: readonly string[]): string[] {
  const s = schemaAt(path);
  return s instanceof z.ZodObject ? Object.keys(s.shape) : [];
}
