export * from './synthetic-market';
export * from './csv-bars';
export * from './bar-producer';
