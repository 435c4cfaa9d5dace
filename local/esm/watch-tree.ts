// Watches a tree for changes. On Linux, Node's recursive fs.watch (20 and 22) watches each file's inode: once a
// file is replaced by a rename (an editor's atomic save) no later change to it is reported, not even a plain write
// (24 reports them). So on Linux every folder has a watch of its own, which reports its entries by name whatever
// their inode; elsewhere the recursive watch is the platform's own and is used as it is.
import { type FSWatcher, lstatSync, readdirSync, watch } from 'node:fs';
import path from 'node:path';

export interface TreeWatcher {
  close(): void;
}

export interface WatchTreeOptions {
  /** Called with the path of what changed (a file or folder under the root; the root when unknown). */
  changed: (entry: string) => void;
  /** A folder that could not be watched (the inotify limit, no permission): its changes would go unseen. */
  failed: (error: Error) => void;
}

/** Watches `root` (which must exist) and everything under it, folders made later included. */
export function watchTree(root: string, options: WatchTreeOptions): TreeWatcher {
  if (process.platform !== 'linux') {
    const watcher = watch(root, { recursive: true }, (_event, name) =>
      options.changed(name ? path.join(root, name) : root),
    );
    watcher.on('error', options.failed);
    return watcher;
  }
  return new FolderWatches(root, options);
}

class FolderWatches implements TreeWatcher {
  readonly #watches = new Map<string, FSWatcher>();
  readonly #options: WatchTreeOptions;
  #closed = false;

  constructor(root: string, options: WatchTreeOptions) {
    this.#options = options;
    if (!lstatSync(root).isDirectory()) throw new Error(`${root} is not a folder`);
    this.#add(root, true);
  }

  close(): void {
    this.#closed = true;
    for (const watcher of this.#watches.values()) watcher.close();
    this.#watches.clear();
  }

  #add(dir: string, isRoot = false): void {
    if (this.#closed || this.#watches.has(dir)) return;
    let watcher: FSWatcher;
    try {
      watcher = watch(dir, (_event, name) => this.#onEvent(dir, name));
    } catch (error) {
      if (isRoot) throw error;
      // Gone before it could be watched: its parent's watch has reported that.
      if (!isGone(error)) this.#options.failed(new Error(`cannot watch ${dir}: ${(error as Error).message}`));
      return;
    }
    watcher.on('error', (error) => {
      this.#forget(dir);
      if (!isGone(error)) this.#options.failed(new Error(`watching ${dir} failed: ${error.message}`));
    });
    this.#watches.set(dir, watcher);
    for (const entry of subfolders(dir)) this.#add(entry);
  }

  #onEvent(dir: string, name: string | null): void {
    if (this.#closed) return;
    if (!name) {
      // No name: what changed in the folder is unknown, so its new subfolders are looked for.
      this.#options.changed(dir);
      for (const entry of subfolders(dir)) this.#add(entry);
      return;
    }
    const entry = path.join(dir, name);
    this.#options.changed(entry);
    // A folder's parent hears of it only when it is made, removed, moved or its attributes change: its watches,
    // and those of the folders in it, are made anew (a folder removed and made again at once may even have the
    // removed one's inode, so nothing short of that tells them apart).
    this.#forget(entry);
    if (lstatOrUndefined(entry)?.isDirectory()) this.#add(entry);
  }

  /** Ends the watches of `dir` and of every folder under it. */
  #forget(dir: string): void {
    for (const [watched, watcher] of this.#watches) {
      if (watched === dir || watched.startsWith(`${dir}${path.sep}`)) {
        watcher.close();
        this.#watches.delete(watched);
      }
    }
  }
}

function isGone(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function lstatOrUndefined(entry: string) {
  try {
    return lstatSync(entry);
  } catch {
    return undefined;
  }
}

/** The folders in `dir`; symbolic links are not followed (nor were they by Node's watch). */
function subfolders(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries
    .map((name) => path.join(dir, name))
    .filter((entry) => lstatOrUndefined(entry)?.isDirectory());
}
