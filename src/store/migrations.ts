/**
 * Schema migrations, applied in order inside one transaction each. Never
 * edit a published migration: append a new one.
 */
export const MIGRATIONS: ReadonlyArray<{ version: number; name: string; sql: string }> = [
  {
    version: 1,
    name: 'vms, state transitions, boot phases',
    sql: `
      CREATE TABLE vms (
        id TEXT PRIMARY KEY,
        driver TEXT NOT NULL,
        profile TEXT NOT NULL,
        image_digest TEXT,
        state TEXT NOT NULL,
        accel TEXT,
        vcpus INTEGER NOT NULL,
        memory_mib INTEGER NOT NULL,
        pid INTEGER,
        run_dir TEXT,
        console_log TEXT,
        error_code TEXT,
        error_message TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
      CREATE INDEX vms_state ON vms(state);
      CREATE TABLE vm_transitions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        vm_id TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
        from_state TEXT,
        to_state TEXT NOT NULL,
        reason TEXT,
        at TEXT NOT NULL
      );
      CREATE INDEX vm_transitions_vm ON vm_transitions(vm_id, seq);
      CREATE TABLE vm_phases (
        vm_id TEXT NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        seq INTEGER NOT NULL,
        name TEXT NOT NULL,
        ms REAL NOT NULL,
        PRIMARY KEY (vm_id, kind, seq)
      );
    `,
  },
  {
    version: 2,
    name: 'network leases (IPAM)',
    sql: `
      CREATE TABLE network_leases (
        vm_id TEXT PRIMARY KEY,
        host_address TEXT UNIQUE NOT NULL,
        subnet TEXT NOT NULL,
        netns TEXT NOT NULL,
        created_at TEXT NOT NULL
      );
      CREATE UNIQUE INDEX network_leases_subnet ON network_leases(subnet);
    `,
  },
  {
    version: 3,
    name: 'owner process of each VM (reconciliation must not touch VMs of another live tfc process)',
    sql: `ALTER TABLE vms ADD COLUMN owner_pid INTEGER;`,
  },
  {
    version: 4,
    name: 'owner process start time (a reused pid is not the owner)',
    sql: `ALTER TABLE vms ADD COLUMN owner_start INTEGER;`,
  },
  {
    version: 5,
    name: 'snapshots of running VMs (live snapshots)',
    sql: `
      CREATE TABLE live_snapshots (
        id TEXT PRIMARY KEY,
        vm_id TEXT NOT NULL,
        name TEXT,
        created_at TEXT NOT NULL,
        dir TEXT NOT NULL,
        files TEXT NOT NULL,
        size_bytes INTEGER NOT NULL,
        pause_ms REAL NOT NULL,
        profile TEXT NOT NULL,
        driver TEXT NOT NULL,
        meta TEXT NOT NULL
      );
      CREATE INDEX live_snapshots_vm ON live_snapshots(vm_id);
      CREATE UNIQUE INDEX live_snapshots_name ON live_snapshots(name) WHERE name IS NOT NULL;
    `,
  },
  {
    version: 6,
    name: 'command history of the Terraphim execution API',
    sql: `
      CREATE TABLE terraphim_history (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL,
        vm_id TEXT NOT NULL,
        agent_id TEXT NOT NULL,
        command TEXT NOT NULL,
        language TEXT NOT NULL,
        snapshot_id TEXT,
        success INTEGER NOT NULL,
        exit_code INTEGER NOT NULL,
        stdout TEXT NOT NULL,
        stderr TEXT NOT NULL,
        executed_at TEXT NOT NULL,
        duration_ms INTEGER NOT NULL
      );
      CREATE INDEX terraphim_history_vm ON terraphim_history(vm_id, seq);
    `,
  },
  {
    version: 7,
    name: 'alerts of the performance monitor and the webhook delivery log',
    sql: `
      CREATE TABLE alerts (
        id TEXT PRIMARY KEY,
        rule TEXT NOT NULL,
        labels TEXT NOT NULL,
        state TEXT NOT NULL,
        value REAL NOT NULL,
        threshold REAL NOT NULL,
        summary TEXT NOT NULL,
        started_at TEXT NOT NULL,
        fired_at TEXT,
        resolved_at TEXT,
        updated_at TEXT NOT NULL
      );
      CREATE INDEX alerts_state ON alerts(state, updated_at);
      CREATE TABLE webhook_deliveries (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        webhook TEXT NOT NULL,
        event_id INTEGER NOT NULL,
        event_type TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        http_status INTEGER,
        error TEXT,
        latency_ms REAL,
        created_at TEXT NOT NULL,
        finished_at TEXT NOT NULL
      );
    `,
  },
];
