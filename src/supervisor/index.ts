export * from './ipc';
export * from './health-server';
export * from './supervisor';
export * from './worker';
