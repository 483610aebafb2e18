export * from './logger';
export * from './events';
export * from './metrics';
