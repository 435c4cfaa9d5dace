// The subpath schema-registry.ts imports (avsc declares types for its package entry only).
declare module 'avsc/lib/types' {
  export { Type } from 'avsc';
}
