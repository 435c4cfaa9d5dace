/**
 * Bounds on what avsc reads for arrays and maps. avsc trusts a block's item count: a 16-byte value ending in the
 * count 2^31-1 makes it allocate and loop 2^31 times, reading past the end of the buffer (GBs of heap, then an
 * out-of-memory crash that takes the whole batch with it). Every item of an array or map takes at least one byte
 * of the body, except items of type null (which the catalog never uses in arrays or maps), so a block may not
 * claim more items than bytes remain; nor may a block byte size run past the end. The check costs one comparison
 * per block. avsc offers no hook for this, so its ArrayType and MapType readers are replaced here, once, before
 * any type or resolver is created (resolvers copy `_read` when they are built). The int reader gets the range
 * check avsc's long reader already has.
 */
import avscTypes from 'avsc/lib/types';

/** A block count or size that the remaining bytes cannot hold. */
export class AvroBoundsError extends Error {
  override name = 'AvroBoundsError';
}

interface Tap {
  buf: Buffer;
  pos: number;
  readLong(): number;
  readString(): string;
  skipString(): void;
}

interface ItemType {
  _read(tap: Tap): unknown;
  _skip(tap: Tap): void;
}

/** The next block's item count; throws when the bytes that remain cannot hold that many items. */
function blockCount(tap: Tap, what: string): number {
  let n = tap.readLong();
  if (n < 0) {
    n = -n;
    const size = tap.readLong();
    if (size < 0 || size > tap.buf.length - tap.pos) {
      throw new AvroBoundsError(
        `${what} block size ${size} exceeds the ${tap.buf.length - tap.pos} bytes left`,
      );
    }
  }
  const left = tap.buf.length - tap.pos;
  if (!(n <= left)) {
    throw new AvroBoundsError(`${what} block count ${n} exceeds the ${Math.max(left, 0)} bytes left`);
  }
  return n;
}

/** Negative counts are followed by the block's byte size, which lets a skip jump over the block. */
function skipBlocks(tap: Tap, what: string, skipItem: (tap: Tap) => void): void {
  for (;;) {
    const start = tap.pos;
    let n = tap.readLong();
    if (n === 0) return;
    if (n < 0) {
      const size = tap.readLong();
      if (size < 0 || size > tap.buf.length - tap.pos) {
        throw new AvroBoundsError(
          `${what} block size ${size} exceeds the ${tap.buf.length - tap.pos} bytes left`,
        );
      }
      tap.pos += size;
      continue;
    }
    tap.pos = start;
    n = blockCount(tap, what);
    while (n--) skipItem(tap);
  }
}

const { ArrayType, MapType, IntType } = avscTypes.builtins as unknown as {
  IntType: { prototype: { _read(tap: Tap): number } };
  ArrayType: { prototype: { itemsType: ItemType; _read(tap: Tap): unknown; _skip(tap: Tap): void } };
  MapType: { prototype: { valuesType: ItemType; _read(tap: Tap): unknown; _skip(tap: Tap): void } };
};

ArrayType.prototype._read = function readArray(this: { itemsType: ItemType }, tap: Tap): unknown[] {
  const items = this.itemsType;
  const values: unknown[] = [];
  let n = blockCount(tap, 'array');
  while (n !== 0) {
    while (n--) values.push(items._read(tap));
    // Past the end means the body was truncated; avsc reports that from the final position.
    if (tap.pos > tap.buf.length) return values;
    n = blockCount(tap, 'array');
  }
  return values;
};

ArrayType.prototype._skip = function skipArray(this: { itemsType: ItemType }, tap: Tap): void {
  const items = this.itemsType;
  skipBlocks(tap, 'array', (t) => items._skip(t));
};

MapType.prototype._read = function readMap(
  this: { valuesType: ItemType },
  tap: Tap,
): Record<string, unknown> {
  const values = this.valuesType;
  const map: Record<string, unknown> = {};
  let n = blockCount(tap, 'map');
  while (n !== 0) {
    while (n--) {
      const key = tap.readString();
      map[key] = values._read(tap);
    }
    if (tap.pos > tap.buf.length) return map;
    n = blockCount(tap, 'map');
  }
  return map;
};

MapType.prototype._skip = function skipMap(this: { valuesType: ItemType }, tap: Tap): void {
  const values = this.valuesType;
  skipBlocks(tap, 'map', (t) => {
    t.skipString();
    values._skip(t);
  });
};

// avsc reads an int as a long and returns it unchecked: a fuzzed `int` field held 8.1e18.
IntType.prototype._read = function readInt(tap: Tap): number {
  const n = tap.readLong();
  if ((n | 0) !== n) throw new AvroBoundsError(`int ${n} is outside the 32-bit range`);
  return n;
};

/** Imported for its effect; this export lets a test check the readers are the bounded ones. */
export const boundedAvroReaders = { array: ArrayType.prototype._read, map: MapType.prototype._read };
