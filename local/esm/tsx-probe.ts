// Imported by function-worker-entry.mjs to find out whether this worker thread already loads TypeScript.
export const typescriptLoads = true;
