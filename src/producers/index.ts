export * from './synthetic-market';
export * from './csv-bars';
export * from './bar-producer';
export * from './binance-klines';
export * from './zip-file';
