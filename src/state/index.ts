export * from './redis-client';
export * from './symbol-state-store';
