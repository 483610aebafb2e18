export * from './bar.schema';
export * from './strategic-context.schema';
export * from './integrated-result.schema';
export * from './dead-letter.schema';
