import type { Command } from 'commander';
import { resolveProfile } from '../../config/index.js';
import { buildImage } from '../../guest/image-builder.js';
import { listImages } from '../../guest/image-store.js';
import type { WithContext } from '../context.js';
import { printJson, renderTable } from '../output.js';
import { createBuildProgress } from '../progress.js';

export function registerImageCommands(program: Command, withContext: WithContext): void {
  const image = program.command('image').description('build and list guest images');

  image
    .command('build')
    .description('build the guest image of a profile (kernel + initramfs with the agent); a cache hit when nothing changed')
    .option('--profile <name>', 'profile whose image to build (default: default_profile)')
    .option('--force', 'rebuild even if the cache has it')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { profile?: string; force?: boolean; json?: boolean }) =>
      setExit(
        await withContext(async (ctx) => {
          const profile = resolveProfile(ctx.config, opts.profile);
          if (!opts.json) process.stderr.write(`building image "${profile.image}" for profile "${profile.name}" in ${ctx.layout.images}\n`);
          const progress = opts.json ? undefined : createBuildProgress();
          let result;
          try {
            result = await buildImage(ctx.layout, { name: profile.image, kernelPackage: ctx.config.images.kernelPackage, force: opts.force }, progress);
          } finally {
            progress?.stop();
          }
          const m = result.image.manifest;
          if (opts.json) {
            printJson({ cache_hit: result.cacheHit, dir: result.image.dir, steps: result.steps, manifest: m });
          } else {
            process.stdout.write(
              `${result.cacheHit ? 'cache hit' : 'built'}: ${m.name} ${m.digest.slice(0, 16)} kernel ${m.kernel.release} (${m.kernel.package} ${m.kernel.version})\n  ${result.image.dir}\n`,
            );
          }
          return 0;
        }),
      ),
    );

  image
    .command('ls')
    .description('list built images')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }) =>
      setExit(
        await withContext(async (ctx) => {
          const images = listImages(ctx.layout);
          if (opts.json) {
            printJson(images.map((i) => ({ current: i.current, dir: i.dir, ...i.manifest })));
          } else if (images.length === 0) {
            process.stdout.write('no images built; run `tfc image build`\n');
          } else {
            const mib = (b: number) => (b / 1048576).toFixed(1);
            process.stdout.write(
              renderTable(
                ['name', 'digest', 'kernel', 'vmlinux MiB', 'initrd MiB', 'created', 'current'],
                images.map((i) => [
                  i.manifest.name,
                  i.manifest.digest.slice(0, 16),
                  i.manifest.kernel.release,
                  mib(i.manifest.files.vmlinux.sizeBytes),
                  mib(i.manifest.files.initrd.sizeBytes),
                  i.manifest.created_at,
                  i.current ? 'yes' : '',
                ]),
              ) + '\n',
            );
          }
          return 0;
        }),
      ),
    );
}

function setExit(code: number): void {
  process.exitCode = code;
}
