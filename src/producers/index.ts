export * from './synthetic-market';
