// The rebuild-on-change watcher of dev and the emulator (local/esm/watch-tree.ts), on a real folder.
import { mkdirSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type TreeWatcher, watchTree } from '../../../local/esm/watch-tree';
import { waitFor } from '../../support/wait';

describe('watchTree', () => {
  let outside: string;
  let root: string;
  let watcher: TreeWatcher | undefined;
  let changes: string[] = [];
  let failures: Error[] = [];

  beforeEach(async () => {
    outside = await mkdtemp(path.join(tmpdir(), 'watch-tree-'));
    root = path.join(outside, 'root');
    await mkdir(path.join(root, 'functions', 'billing'), { recursive: true });
    await writeFile(path.join(root, 'functions', 'billing', 'bill.ts'), 'a');
    changes = [];
    failures = [];
    watcher = watchTree(root, {
      changed: (entry) => changes.push(entry),
      failed: (error) => failures.push(error),
    });
  });

  afterEach(async () => {
    watcher?.close();
    expect(failures).toEqual([]);
    await rm(outside, { recursive: true, force: true });
  });

  /** Runs `change` and waits until the watcher reports `entry`; events of earlier steps are let through first. */
  const reported = async (entry: string, change: () => Promise<unknown>) => {
    await sleep(200);
    changes = [];
    await change();
    await waitFor(`a change of ${path.relative(root, entry)}`, () => changes.includes(entry), 5_000);
  };

  it('reports every save of a file an editor replaces by a rename, and the plain writes after them', async () => {
    const file = path.join(root, 'functions', 'billing', 'bill.ts');
    for (const content of ['b', 'c', 'd']) {
      await reported(file, async () => {
        // Written outside the watched tree, as an editor's backup may be: only the rename is in it.
        const temporary = path.join(outside, `bill-${content}.tmp`);
        await writeFile(temporary, content);
        await rename(temporary, file);
      });
    }
    await reported(file, () => writeFile(file, 'e'));
  });

  it('watches folders made after it started, nested ones, and one removed and made again at once', async () => {
    const nested = path.join(root, 'shared', 'msk', 'codecs');
    await reported(path.join(root, 'shared'), () => mkdir(nested, { recursive: true }));
    // With mkdir -p the inner folders may be listed before they exist; a later event of theirs adds them.
    await sleep(100);
    await reported(path.join(nested, 'avro.ts'), () => writeFile(path.join(nested, 'avro.ts'), 'x'));
    await reported(path.join(nested, 'avro.ts'), () => writeFile(path.join(nested, 'avro.ts'), 'y'));

    const again = path.join(root, 'schemas');
    await mkdir(path.join(again, 'booking'), { recursive: true });
    await reported(path.join(again, 'booking', 'v1.avsc'), () =>
      writeFile(path.join(again, 'booking', 'v1.avsc'), '{}'),
    );
    // Removed and made again before the watcher hears of it (a git checkout): the new folder is watched, with its
    // own subfolder, not the removed one's.
    await reported(again, async () => {
      // In one tick, so that the watcher's callbacks see only the new folder.
      rmSync(again, { recursive: true });
      mkdirSync(path.join(again, 'booking'), { recursive: true });
    });
    await sleep(100);
    await reported(path.join(again, 'booking', 'v2.avsc'), () =>
      writeFile(path.join(again, 'booking', 'v2.avsc'), '{}'),
    );
  });

  it('reports nothing once closed', async () => {
    watcher?.close();
    await writeFile(path.join(root, 'functions', 'billing', 'bill.ts'), 'closed');
    await sleep(300);
    expect(changes).toEqual([]);
  });

  it('refuses a root that does not exist', () => {
    expect(() =>
      watchTree(path.join(outside, 'missing'), { changed: () => undefined, failed: () => undefined }),
    ).toThrow(/ENOENT/);
  });
});
