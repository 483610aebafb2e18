export * from './redis-client';
export * from './symbol-state-store';
export * from './atomic-file';
export * from './pattern-store-files';
