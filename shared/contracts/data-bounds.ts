/**
 * Checks on decoded event data that the Avro schema alone cannot express:
 * - timestamp-millis values must lie within years 0001-9999 (shared/time.ts): createdAt = 8.64e15 is a valid
 *   Avro long, but it makes Date#toISOString throw or write `+010000-...`, which functions bucket and store;
 * - strings must be well-formed UTF-16 (no lone surrogate): JSON can carry `"\ud800"`, which PostgreSQL's
 *   jsonb refuses and UTF-8 encoders silently replace.
 * avsc forgets logical types it has no class for, so parseAvroType marks the timestamp types with a type hook.
 */
import type avro from 'avsc';
import { Type } from 'avsc/lib/types';
import { isTimeInRange } from '../time';

const timestampTypes = new WeakSet<object>();

/** avsc typeHook: a timestamp-millis long becomes a plain long that this module knows is a timestamp. */
export function timestampTypeHook(schema: unknown): avro.Type | undefined {
  if (
    typeof schema === 'object' &&
    schema !== null &&
    (schema as { type?: unknown }).type === 'long' &&
    (schema as { logicalType?: unknown }).logicalType === 'timestamp-millis'
  ) {
    const type = Type.forSchema('long' as avro.Schema);
    timestampTypes.add(type);
    return type;
  }
  return undefined;
}

interface TypeShape {
  typeName: string;
  fields?: ReadonlyArray<{ name: string; type: TypeShape }>;
  types?: readonly TypeShape[];
  itemsType?: TypeShape;
  valuesType?: TypeShape;
}

/** Whether a type holds anything to check (a timestamp somewhere below it); memoised per type. */
const holdsTimestamp = new WeakMap<object, boolean>();

function needsCheck(type: TypeShape): boolean {
  const known = holdsTimestamp.get(type);
  if (known !== undefined) return known;
  holdsTimestamp.set(type, false); // recursive types: assume no until shown otherwise
  let result = timestampTypes.has(type);
  if (!result && type.fields) result = type.fields.some((field) => needsCheck(field.type));
  if (!result && type.types) result = type.types.some(needsCheck);
  if (!result && type.itemsType) result = needsCheck(type.itemsType);
  if (!result && type.valuesType) result = needsCheck(type.valuesType);
  holdsTimestamp.set(type, result);
  return result;
}

/** The first timestamp out of range in `value` read as `type`, as "path: problem", or undefined. */
function timestampProblem(type: TypeShape, value: unknown, path: string): string | undefined {
  if (!needsCheck(type)) return undefined;
  if (timestampTypes.has(type)) {
    return typeof value === 'number' && isTimeInRange(value)
      ? undefined
      : `${path} timestamp-millis ${String(value)} is outside years 0001-9999`;
  }
  if (value === null || typeof value !== 'object') {
    // An unwrapped union holding a non-null branch: try the branches that could hold it.
    if (type.types && typeof value === 'number') {
      for (const branch of type.types)
        if (timestampTypes.has(branch)) return timestampProblem(branch, value, path);
    }
    return undefined;
  }
  if (type.fields) {
    for (const field of type.fields) {
      const problem = timestampProblem(
        field.type,
        (value as Record<string, unknown>)[field.name],
        `${path}.${field.name}`,
      );
      if (problem) return problem;
    }
    return undefined;
  }
  if (type.types) {
    // Unwrapped union of a record: the branch whose fields match; wrapped: { name: value }.
    for (const branch of type.types) {
      if (branch.typeName === 'null') continue;
      const problem = timestampProblem(branch, value, path);
      if (problem) return problem;
    }
    return undefined;
  }
  if (type.itemsType && Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const problem = timestampProblem(type.itemsType, value[i], `${path}[${i}]`);
      if (problem) return problem;
    }
  }
  if (type.valuesType) {
    for (const [key, item] of Object.entries(value)) {
      const problem = timestampProblem(type.valuesType, item, `${path}.${key}`);
      if (problem) return problem;
    }
  }
  return undefined;
}

type Checker = (value: unknown) => string | undefined;

/** Per record type, a checker that visits only the fields holding a timestamp (compiled once per type). */
const checkers = new WeakMap<object, Checker | null>();

function checkerFor(type: TypeShape): Checker | null {
  let checker = checkers.get(type);
  if (checker !== undefined) return checker;
  checker = null;
  if (needsCheck(type)) {
    const fields = type.fields?.filter((field) => needsCheck(field.type));
    // A flat record whose timestamps are direct fields (every catalog schema): check just those.
    if (fields?.every((field) => timestampTypes.has(field.type))) {
      const names = fields.map((field) => field.name);
      checker = (value) => {
        if (value === null || typeof value !== 'object') return undefined;
        for (let i = 0; i < names.length; i++) {
          const name = names[i] as string;
          const time = (value as Record<string, unknown>)[name];
          if (typeof time !== 'number' || !isTimeInRange(time)) {
            return `data.${name} timestamp-millis ${String(time)} is outside years 0001-9999`;
          }
        }
        return undefined;
      };
    } else {
      checker = (value) => timestampProblem(type, value, 'data');
    }
  }
  checkers.set(type, checker);
  return checker;
}

/** The problem with Avro-decoded data read as `type` (a timestamp out of range), or undefined. */
export function avroDataProblem(type: avro.Type, data: unknown): string | undefined {
  const checker = checkerFor(type as unknown as TypeShape);
  return checker === null ? undefined : checker(data);
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** The path of the first string (or key) in parsed JSON that holds a lone surrogate, or undefined. */
export function loneSurrogatePath(value: unknown, path = 'data'): string | undefined {
  if (typeof value === 'string') return LONE_SURROGATE.test(value) ? path : undefined;
  if (value === null || typeof value !== 'object') return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = loneSurrogatePath(value[i], `${path}[${i}]`);
      if (found) return found;
    }
    return undefined;
  }
  for (const [key, item] of Object.entries(value)) {
    if (LONE_SURROGATE.test(key)) return `${path} key`;
    const found = loneSurrogatePath(item, `${path}.${key}`);
    if (found) return found;
  }
  return undefined;
}
