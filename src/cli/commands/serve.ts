import type { Command } from 'commander';
import { startDaemon } from '../../daemon/index.js';
import type { WithContext } from '../context.js';

export function registerServe(program: Command, withContext: WithContext): void {
  program
    .command('serve')
    .description('run the daemon: golden snapshots, warm pools, REST API (stops on SIGINT/SIGTERM, destroying its VMs)')
    .option('--listen <host:port>', 'listen address (default: api.listen, env TFC_LISTEN)')
    .action(async (opts: { listen?: string }) => {
      process.exitCode = await withContext(
        async (ctx) => {
          const log = (m: string) => process.stderr.write(`tfc serve: ${m}\n`);
          // A promise nobody handles is a bug, not a reason to take every tenant's VM down: log it and keep serving.
          process.on('unhandledRejection', (reason) => {
            log(`unhandled rejection (a bug in tfc; the daemon keeps running): ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`);
          });
          const started = performance.now();
          const daemon = await startDaemon(ctx.config, { listen: opts.listen ?? ctx.config.api.listen, onProgress: log });
          const r = daemon.reconciled;
          if (r.vmsMarkedStopped.length || r.runDirsRemoved.length || r.tempDirsRemoved.length) {
            log(
              `reconciled: ${r.vmsMarkedStopped.length} VMs of a previous run marked stopped, ${r.processesKilled.length} processes killed, ${r.runDirsRemoved.length} run dirs and ${r.tempDirsRemoved.length} temp dirs removed`,
            );
          }
          log(`listening on ${daemon.url} (ready in ${Math.round(performance.now() - started)} ms)`);
          log(daemon.token.source === 'env' ? 'API token: from TFC_TOKEN' : `API token file: ${daemon.token.path}`);
          for (const p of daemon.pools.list())
            log(`pool ${p.name}: profile ${p.profile}, target ${p.target} (min ${p.min}, max ${p.max}), ${p.mode}, ${p.strategy}`);
          await new Promise<void>((resolve) => {
            const stop = (signal: string) => {
              log(`${signal}: stopping, destroying VMs`);
              resolve();
            };
            process.once('SIGINT', () => stop('SIGINT'));
            process.once('SIGTERM', () => stop('SIGTERM'));
          });
          await daemon.close();
          log('stopped');
          return 0;
        },
        { handleSignals: false },
      );
    });
}
