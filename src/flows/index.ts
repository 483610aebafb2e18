export * from './resample-flow';
export * from './context-buffer-flow';
export * from './tactical-flow';
export * from './strategic-flow';
export * from './indicator-stage';
export * from './breakers';
export * from './analytics-stage';
