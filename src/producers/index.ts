export * from './synthetic-market';
export * from './csv-bars';
export * from './bar-producer';
export * from './bar-source';
export * from './binance-kline-messages';
export * from './binance-kline-source';
export * from './binance-klines';
export * from './zip-file';
