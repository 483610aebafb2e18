export * from './analysis';
export { buildReportHtml, type ReportOptions } from './html';
export { readReportData } from './results-file';
export { BarKeySet } from './bar-key-set';
