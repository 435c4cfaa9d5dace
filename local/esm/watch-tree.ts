// Watches every directory of a tree, each with a watch of its own. Node's recursive fs.watch on Linux (20 and 22)
// watches each file's inode: once a file is replaced by a rename (an editor's atomic save, the bundles test's
// writes), no later change to it is reported, not even a plain write (24 reports them). A directory's watch
// reports its entries by name, whatever inode they have.
import { type FSWatcher, readdirSync, statSync, watch } from 'node:fs';
import path from 'node:path';

export interface TreeWatcher {
  close(): void;
}

/** Calls `changed` for any change under `root` (files and folders, new ones included). */
export function watchTree(root: string, changed: () => void): TreeWatcher {
  const watchers = new Map<string, FSWatcher>();
  let closed = false;

  const forget = (dir: string) => {
    watchers.get(dir)?.close();
    watchers.delete(dir);
  };

  const add = (dir: string) => {
    if (closed || watchers.has(dir)) return;
    let watcher: FSWatcher;
    try {
      watcher = watch(dir, (_event, name) => {
        changed();
        if (!name) return;
        // A folder created or moved in is watched from now on, with what it holds; one removed or moved out is
        // not (a folder made again under its name is a new one).
        const entry = path.join(dir, name.toString());
        if (isDirectory(entry)) add(entry);
        else forget(entry);
      });
    } catch {
      return; // gone before it could be watched: its parent's watch reports it
    }
    // A removed folder's watch may end with an error: it is not watched any more.
    watcher.on('error', () => forget(dir));
    watchers.set(dir, watcher);
    for (const entry of subdirectories(dir)) add(entry);
  };

  add(root);
  return {
    close() {
      closed = true;
      for (const dir of [...watchers.keys()]) forget(dir);
    },
  };
}

function isDirectory(entry: string): boolean {
  try {
    return statSync(entry).isDirectory();
  } catch {
    return false;
  }
}

function subdirectories(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => path.join(dir, e.name));
  } catch {
    return [];
  }
}
