/**
 * The fake's hybrid vsock device, host side: listens on `uds_path`, reads
 * `CONNECT <port>\n`, and bridges the connection to the "guest" port. The
 * only guest service is the guest agent built for the host (env
 * FAKE_FC_GUEST_AGENT), started as `AGENT --unix <tmp socket>` when the VM
 * starts; a port nothing listens on gets its connection closed without an
 * `OK`, as Firecracker does when the guest resets it. Guest-initiated
 * connections (`<uds_path>_<port>`) are not simulated.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Firecracker numbers host-side ports of host-initiated connections from 2^30 up. */
const FIRST_HOST_PORT = 1 << 30;
const MAX_HANDSHAKE_BYTES = 64;
/** util-linux setpriv: makes the kernel kill the agent if the fake dies without cleaning up (SIGKILL). */
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));
const children = new Set();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

export class VsockDevice {
  /**
   * @param {object} o
   * @param {string} o.udsPath where the host connects
   * @param {string|undefined} o.agentPath guest agent executable, or undefined for no guest service
   * @param {number} o.agentPort guest port the agent listens on
   * @param {(event: object) => void} o.record adds an entry to the report
   * @param {(code: number|null) => void} o.onAgentExit the guest agent ended (exit 0 = guest shut down)
   */
  constructor({ udsPath, agentPath, agentPort, record, onAgentExit }) {
    Object.assign(this, { udsPath, agentPath, agentPort, record, onAgentExit });
    this.nextHostPort = FIRST_HOST_PORT;
    this.paused = false;
    this.deferred = [];
    this.sockets = new Set();
    this.agent = null;
    this.agentDir = null;
    this.server = null;
  }

  /** Binds `udsPath` (resolves once listening) and starts the guest agent, if any. */
  async start() {
    if (this.agentPath) {
      this.agentDir = mkdtempSync(join(tmpdir(), 'fake-fc-agent-'));
      this.agentSocket = join(this.agentDir, 'agent.sock');
      const argv = [this.agentPath, '--unix', this.agentSocket];
      const [cmd, ...rest] = SETPRIV ? [SETPRIV, '--pdeathsig', 'SIGKILL', '--', ...argv] : argv;
      const agent = spawn(cmd, rest, { stdio: ['ignore', 'ignore', 'inherit'] });
      this.agent = agent;
      children.add(agent);
      agent.on('error', (err) => this.record({ event: 'agent-error', message: err.message }));
      agent.on('exit', (code, signal) => {
        children.delete(agent);
        this.record({ event: 'agent-exit', code, signal });
        this.agent = null;
        if (!this.stopping) this.onAgentExit(code);
      });
    }
    this.server = net.createServer((conn) => this.accept(conn));
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.udsPath, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  accept(conn) {
    this.sockets.add(conn);
    conn.on('close', () => this.sockets.delete(conn));
    conn.on('error', () => conn.destroy());
    let buf = Buffer.alloc(0);
    const onData = (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      const nl = buf.indexOf(0x0a);
      if (nl < 0) {
        if (buf.length > MAX_HANDSHAKE_BYTES) conn.destroy();
        return;
      }
      conn.off('data', onData);
      conn.pause();
      const line = buf.subarray(0, nl).toString('latin1');
      const rest = buf.subarray(nl + 1);
      const go = () => this.connect(conn, line, rest);
      if (this.paused) this.deferred.push(go);
      else go();
    };
    conn.on('data', onData);
  }

  connect(conn, line, rest) {
    const m = /^CONNECT (\d{1,10})$/.exec(line);
    const port = m ? Number(m[1]) : null;
    if (port === null || port > 0xffffffff) {
      this.record({ event: 'vsock-connect', line, accepted: false, reason: 'malformed CONNECT line' });
      return conn.destroy();
    }
    if (!this.agent || port !== this.agentPort) {
      this.record({ event: 'vsock-connect', port, accepted: false, reason: 'no guest listener on this port' });
      return conn.destroy();
    }
    const guest = net.connect(this.agentSocket);
    this.sockets.add(guest);
    guest.on('close', () => {
      this.sockets.delete(guest);
      conn.destroy();
    });
    let connected = false;
    guest.on('error', () => {
      // The agent is not listening yet (guest still booting): the host sees a closed connection and retries.
      if (connected) return;
      this.record({ event: 'vsock-connect', port, accepted: false, reason: 'guest agent not listening yet' });
      conn.destroy();
    });
    guest.on('connect', () => {
      connected = true;
      const hostPort = this.nextHostPort++;
      this.record({ event: 'vsock-connect', port, accepted: true, hostPort });
      conn.write(`OK ${hostPort}\n`);
      if (rest.length) guest.write(rest);
      conn.pipe(guest);
      guest.pipe(conn);
      conn.on('close', () => guest.destroy());
      if (this.paused) {
        conn.pause();
        guest.pause();
      }
    });
  }

  /** The guest stops running: data stops flowing both ways, new connections wait. */
  pause() {
    this.paused = true;
    for (const s of this.sockets) s.pause();
  }

  resume() {
    this.paused = false;
    for (const s of this.sockets) s.resume();
    for (const go of this.deferred.splice(0)) go();
  }

  /** Closes everything, stops the agent and removes its socket directory. Idempotent. */
  async stop() {
    this.stopping = true;
    for (const s of this.sockets) s.destroy();
    if (this.server) await new Promise((resolve) => this.server.close(() => resolve()));
    this.server = null;
    if (this.agent) {
      const agent = this.agent;
      const exited = new Promise((resolve) => agent.once('exit', resolve));
      agent.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 1_000))]);
      if (this.agent) agent.kill('SIGKILL');
    }
    if (this.agentDir) rmSync(this.agentDir, { recursive: true, force: true });
    this.agentDir = null;
  }
}
