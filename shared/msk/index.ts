export * from './batch';
export * from './build';
export * from './decode';
export * from './errors';
export * from './event';
export * from './headers';
export * from './metrics';
