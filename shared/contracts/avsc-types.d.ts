// The subpath schema-registry.ts and avro-bounds.ts import (avsc declares types for its package entry only).
declare module 'avsc/lib/types' {
  export { Type } from 'avsc';

  /** The CommonJS exports; `builtins` (avsc's type classes by name) is not a static named export under Node's ESM. */
  const types: { builtins: Record<string, unknown> };
  export default types;
}
