// The rebuild-on-change watcher of dev and the emulator (local/esm/watch-tree.ts), on a real folder.
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type TreeWatcher, watchTree } from '../../../local/esm/watch-tree';
import { waitFor } from '../../support/wait';

describe('watchTree', () => {
  let root: string;
  let watcher: TreeWatcher | undefined;
  let changes = 0;

  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'watch-tree-'));
    await mkdir(path.join(root, 'functions', 'billing'), { recursive: true });
    await writeFile(path.join(root, 'functions', 'billing', 'bill.ts'), 'a');
    changes = 0;
    watcher = watchTree(root, () => {
      changes += 1;
    });
  });

  afterEach(async () => {
    watcher?.close();
    await rm(root, { recursive: true, force: true });
  });

  /** Runs `change` and waits until the watcher has reported something after it. */
  const reported = async (what: string, change: () => Promise<void>) => {
    const before = changes;
    await change();
    await waitFor(what, () => changes > before, 5_000);
  };

  it('reports every save of a file an editor replaces by a rename, and the plain writes after them', async () => {
    const file = path.join(root, 'functions', 'billing', 'bill.ts');
    for (const content of ['b', 'c', 'd']) {
      await reported(`the rename that saves ${content}`, async () => {
        const temporary = path.join(root, `.bill-${content}.tmp`);
        await writeFile(temporary, content);
        await rename(temporary, file);
      });
    }
    await reported('a plain write after the renames', () => writeFile(file, 'e'));
  });

  it('watches folders made after it started, nested ones too, and one made again after its removal', async () => {
    const nested = path.join(root, 'shared', 'msk', 'codecs');
    await reported('the new folders', () => mkdir(nested, { recursive: true }).then(() => undefined));
    // The folders' own watches may lag the parent's event by a tick.
    await sleep(100);
    await reported('a file in a nested new folder', () => writeFile(path.join(nested, 'avro.ts'), 'x'));
    await reported('a second write to it', () => writeFile(path.join(nested, 'avro.ts'), 'y'));

    const again = path.join(root, 'schemas');
    await reported('a folder made', () => mkdir(again).then(() => undefined));
    await reported('its removal', () => rm(again, { recursive: true }));
    await reported('the folder made again', () => mkdir(again).then(() => undefined));
    await sleep(100);
    await reported('a file in the folder made again', () =>
      writeFile(path.join(again, 'booking.avsc'), '{}'),
    );
  });

  it('reports nothing once closed', async () => {
    watcher?.close();
    await writeFile(path.join(root, 'functions', 'billing', 'bill.ts'), 'closed');
    await sleep(300);
    expect(changes).toBe(0);
  });
});
