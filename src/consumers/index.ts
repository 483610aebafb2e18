export * from './bar-stage-consumer';
export * from './parse-message';
export * from './strategic-consumer';
export * from './tactical-consumer';
export * from './buffer-consumer';
export * from './trainer-consumer';
export * from './experience-batcher';
export * from './model-update-subscriber';
