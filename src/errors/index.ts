export * from './pipeline-error';
