export * from './random';
export * from './keyed-serial-queue';
