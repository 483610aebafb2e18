export * from './bar.schema';
export * from './strategic-context.schema';
export * from './integrated-result.schema';
