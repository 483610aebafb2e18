export * from './audit';
export * from './auth';
export * from './gateway-worker';
export * from './http-error';
export * from './pipeline-stats';
export * from './policy-source';
export * from './process-pool';
export * from './process-service';
export * from './recent-results';
export * from './results-feed';
export * from './routes';
export * from './server';
export * from './ws-hub';
// process-worker.ts is not exported: it is the pool threads' entry point and reads their workerData at load.
