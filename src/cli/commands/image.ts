import type { Command } from 'commander';
import { buildImage, type ImageBuildResult } from '../../guest/image-builder.js';
import { listImages, manifestKind, resolveImage } from '../../guest/image-store.js';
import type { WithContext } from '../context.js';
import { imageSizeBytes, renderImageInspect } from '../image-inspect.js';
import { imageTargets, type ImageBuildSelection } from '../image-targets.js';
import { printJson, renderTable } from '../output.js';
import { createBuildProgress } from '../progress.js';

const mib = (b: number) => (b / 1048576).toFixed(1);

export function registerImageCommands(program: Command, withContext: WithContext): void {
  const image = program.command('image').description('build, list and inspect guest images');

  image
    .command('build')
    .description(
      'build guest images (kernel + initramfs with the agent, and a root filesystem for debian/oci images); a cache hit when nothing changed. ' +
        'Without arguments: the image of default_profile',
    )
    .argument('[names...]', 'images to build: built-in (minimal, python, node), [images.NAME] of the config, or earlier --from-oci builds')
    .option('--profile <name>', 'build the image of this profile')
    .option('--all', 'build every image of the config (built-in and [images.NAME])')
    .option('--from-oci <path>', 'build an image from an OCI image layout directory or tar (with --name)')
    .option('--name <name>', 'name of the --from-oci image (what profiles.X.image refers to)')
    .option('--ref <ref>', 'with --from-oci: which image of a layout holding several (its org.opencontainers.image.ref.name)')
    .option('--extra-mib <n>', 'with --from-oci: free space in the root filesystem, MiB (default 64)')
    .option('--force', "rebuild even if the cache has it (kernel, initramfs and root filesystem; a debian image gets the mirror's current packages)")
    .option('--json', 'print the result as JSON (one object; an array when building several images)')
    .action(async (names: string[], opts: Omit<ImageBuildSelection, 'names'> & { force?: boolean; json?: boolean }) =>
      setExit(
        await withContext(async (ctx) => {
          const targets = imageTargets(ctx.config, ctx.layout, { ...opts, names });
          const results: Array<{ name: string; result: ImageBuildResult }> = [];
          for (const target of targets) {
            if (!opts.json)
              process.stderr.write(
                `building image "${target.name}" (${target.definition.kind})${target.reason ? ` ${target.reason}` : ''} in ${ctx.layout.images}\n`,
              );
            const progress = opts.json ? undefined : createBuildProgress();
            let result;
            try {
              result = await buildImage(
                ctx.layout,
                { name: target.name, definition: target.definition, kernelPackage: ctx.config.images.kernelPackage, force: opts.force },
                progress,
              );
            } finally {
              progress?.stop();
            }
            results.push({ name: target.name, result });
            if (!opts.json) process.stdout.write(describeResult(result));
          }
          if (opts.json) {
            const docs = results.map(({ result }) => ({
              cache_hit: result.cacheHit,
              dir: result.image.dir,
              steps: result.steps,
              manifest: result.image.manifest,
            }));
            printJson(docs.length === 1 ? docs[0] : docs);
          }
          return 0;
        }),
      ),
    );

  image
    .command('ls')
    .description('list built images (kind, size, which build each name points at)')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }) =>
      setExit(
        await withContext(async (ctx) => {
          const images = listImages(ctx.layout);
          if (opts.json) {
            printJson(images.map((i) => ({ current: i.current, dir: i.dir, size_bytes: imageSizeBytes(i), ...i.manifest })));
          } else if (images.length === 0) {
            process.stdout.write('no images built; run `tfc image build`\n');
          } else {
            process.stdout.write(
              renderTable(
                ['name', 'kind', 'digest', 'kernel', 'vmlinux MiB', 'initrd MiB', 'rootfs MiB', 'created', 'current'],
                images.map((i) => [
                  i.manifest.name,
                  manifestKind(i.manifest),
                  i.manifest.digest.slice(0, 16),
                  i.manifest.kernel.release,
                  mib(i.manifest.files.vmlinux.sizeBytes),
                  mib(i.manifest.files.initrd.sizeBytes),
                  i.manifest.files.rootfs ? mib(i.manifest.files.rootfs.sizeBytes) : '',
                  i.manifest.created_at,
                  i.current ? 'yes' : '',
                ]),
                ['left', 'left', 'left', 'left', 'right', 'right', 'right', 'left', 'left'],
              ) + '\n',
            );
          }
          return 0;
        }),
      ),
    );

  image
    .command('inspect')
    .alias('show')
    .description('show what an image holds: files, kernel, root filesystem, installed packages (debian) or layers and config (oci)')
    .argument('<name>', 'image name')
    .option('--json', 'print the manifest as JSON')
    .action(async (name: string, opts: { json?: boolean }) =>
      setExit(
        await withContext(async (ctx) => {
          const built = resolveImage(ctx.layout, name);
          if (opts.json) printJson({ dir: built.dir, ...(built.rootfsPath ? { rootfs_path: built.rootfsPath } : {}), ...built.manifest });
          else process.stdout.write(renderImageInspect(built));
          return 0;
        }),
      ),
    );
}

function describeResult(result: ImageBuildResult): string {
  const m = result.image.manifest;
  const rootfs = m.files.rootfs ? `, rootfs ${mib(m.files.rootfs.sizeBytes)} MiB` : '';
  const packages =
    m.contents?.kind === 'debian' ? `, ${m.contents.packages.length} packages` : m.contents?.kind === 'oci' ? `, ${m.contents.layers.length} layers` : '';
  return (
    `${result.cacheHit ? 'cache hit' : 'built'}: ${m.name} ${m.digest.slice(0, 16)} kernel ${m.kernel.release} (${m.kernel.package} ${m.kernel.version})` +
    `${m.kind && m.kind !== 'minimal' ? ` ${m.kind}${rootfs}${packages}` : ''}\n  ${result.image.dir}\n`
  );
}

function setExit(code: number): void {
  process.exitCode = code;
}
