export * from './embedding';
export * from './feature-matrix';
export * from './pattern-store';
export * from './regime';
export * from './regime-names';
export * from './resample';
export * from './strategic-analyzer';
export * from './uncertainty';
