export * from './analysis';
export { buildReportHtml, type ReportOptions } from './html';
