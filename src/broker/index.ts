export * from './topology';
export * from './broker-connection';
export * from './publisher';
export * from './base-consumer';
