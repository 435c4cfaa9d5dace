/**
 * esbuild plugins for serverless-esbuild (serverless.yml custom.esbuild.plugins).
 *
 * lazyChunk: a module that a handler loads with `await import()` and that is large enough to matter becomes a
 * file of its own next to the handler, `handler.<chunk>.cjs`, instead of part of handler.cjs. A CommonJS bundle
 * has no code splitting, so without this Node reads and compiles the module at every cold start although it
 * runs only when first used: the Kafka producer (@platformatic/kafka, ajv, the MSK IAM signer) is half of
 * incident-explanation's handler.cjs and about a third of its init (bench/RESULTS.md "Bundles").
 *
 * The file name starts with the handler's name plus a dot on purpose: serverless-esbuild leaves files named
 * like that (as it does `handler.cjs.map`) out of every other function's zip, so the chunk ships only with the
 * function that imports it. `serverless invoke local` finds it beside the handler, where Lambda does too.
 *
 * The chunk is bundled on its own, so modules it shares with the handler are copied into it, module state
 * included: keep split points to modules that hold none the handler relies on.
 */
const path = require('node:path');

/** Source files (relative to the service directory) split off when imported dynamically -> chunk name. */
const SPLIT_POINTS = {
  'shared/kafka/producer.ts': 'kafka-producer',
};

const serviceDir = path.resolve(__dirname, '..');

const lazyChunk = {
  name: 'lazy-chunk',
  setup(build) {
    const options = build.initialOptions;
    /** Absolute source path -> output file, for the split points this build reached. */
    const chunks = new Map();

    build.onResolve({ filter: /.*/ }, async (args) => {
      if (args.kind !== 'dynamic-import' || args.pluginData?.lazyChunk) return undefined;
      const resolved = await build.resolve(args.path, {
        kind: args.kind,
        importer: args.importer,
        resolveDir: args.resolveDir,
        pluginData: { lazyChunk: true },
      });
      if (resolved.errors.length > 0 || resolved.external) return undefined;
      const chunk = SPLIT_POINTS[path.relative(serviceDir, resolved.path).split(path.sep).join('/')];
      if (!chunk) return undefined;
      const [entry] = options.entryPoints;
      const file = `${path.parse(typeof entry === 'string' ? entry : entry.in).name}.${chunk}.cjs`;
      chunks.set(resolved.path, file);
      // Resolved at run time relative to handler.cjs, which sits in the same folder.
      return { path: `./${file}`, external: true };
    });

    build.onEnd(async (result) => {
      if (result.errors.length > 0) return;
      const esbuild = require('esbuild');
      const { entryPoints, outdir, outExtension, plugins, metafile, ...shared } = options;
      for (const [source, file] of chunks) {
        // The handler's settings (target, mainFields, alias, define, banner, externals), another entry.
        const built = await esbuild.build({
          ...shared,
          entryPoints: [source],
          outfile: path.join(outdir, file),
        });
        result.errors.push(...built.errors);
        result.warnings.push(...built.warnings);
      }
    });
  },
};

module.exports = [lazyChunk];
