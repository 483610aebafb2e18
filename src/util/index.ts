export * from './random';
export * from './keyed-serial-queue';
export * from './retry-while-transient';
export * from './periods';
export * from './backoff';
export * from './quantile';
