export * from './bar.schema';
export * from './strategic-context.schema';
export * from './integrated-result.schema';
export * from './dead-letter.schema';
export * from './feedback.schema';
export * from './experience.schema';
export * from './model-update.schema';
export * from './gateway.schema';
