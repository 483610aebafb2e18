/**
 * The report opens offline in headless Chromium: no console error, no request leaves the page, and
 * every chart draws. Saves a screenshot to report-screenshots/ (gitignored) for a person to look at.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { buildReportHtml } from '../../../src/report';
import { randomResults } from './fixtures';

/**
 * The parts of the DOM the chart check reads inside the page. The test project's lib has no DOM
 * types, so the page function names what it uses instead of relying on unresolved element types.
 */
interface Box {
  width: number;
  height: number;
}
interface PathElement {
  getAttribute(name: string): string | null;
  getBBox(): Box;
}
interface ChartElement {
  getAttribute(name: string): string | null;
  querySelectorAll(selector: 'path'): Iterable<PathElement>;
  getBoundingClientRect(): Box;
}

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = join(__dirname, '..', '..', '..', 'report-screenshots');
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

jest.setTimeout(120_000);

describe('report in headless Chromium', () => {
  let dir: string;
  let context: BrowserContext;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(
        `no Chromium at ${CHROMIUM}: install the Debian package chromium or set CHROMIUM_PATH`,
      );
    dir = mkdtempSync(join(tmpdir(), 'report-test-'));
    context = await chromium.launchPersistentContext(join(dir, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
    });
  });

  afterAll(async () => {
    await context?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('opens offline with no console error and draws every chart', async () => {
    const results = randomResults(['BTCUSDT', 'ETHUSDT', 'SOLUSDT'], 600, 20261126);
    const html = buildReportHtml(results, {
      source: 'seeded test market',
      deadLetters: 2,
      generatedAt: Date.UTC(2026, 10, 26),
    });
    // Self-contained: no link, script or stylesheet from anywhere (the SVG namespace is not fetched).
    expect(html.replace(/xmlns="http:\/\/www\.w3\.org\/2000\/svg"/g, '')).not.toMatch(
      /https?:|src=|<link|@import/,
    );
    const file = join(dir, 'report.html');
    writeFileSync(file, html);

    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    const requests: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith('file://')) requests.push(r.url());
    });
    await page.goto(`file://${file}`, { waitUntil: 'load' });

    const charts = await page.$$eval('svg.chart', (svgs: ChartElement[]) =>
      svgs.map((svg) => {
        const paths = [...svg.querySelectorAll('path')].filter(
          (p) => (p.getAttribute('d') ?? '').split(/[ML]/).length > 2,
        );
        const drawn = paths.map((p) => p.getBBox()).filter((b) => b.width > 0 || b.height > 0);
        const box = svg.getBoundingClientRect();
        return {
          cls: svg.getAttribute('class'),
          drawn: drawn.length,
          width: box.width,
          height: box.height,
        };
      }),
    );
    const kinds = (cls: string): number => charts.filter((c) => c.cls?.includes(cls)).length;
    expect(kinds('price-chart')).toBe(3);
    expect(kinds('position-chart')).toBe(3);
    expect(kinds('equity-chart')).toBe(3);
    expect(kinds('reliability-chart')).toBe(1);
    expect(kinds('latency-chart')).toBe(1);
    for (const c of charts) {
      expect({ chart: c.cls, drawn: c.drawn > 0, visible: c.width > 100 && c.height > 50 }).toEqual(
        { chart: c.cls, drawn: true, visible: true },
      );
    }
    // Regime bands are drawn where the results have a regime.
    expect(await page.$$eval('rect.band', (r: unknown[]) => r.length)).toBeGreaterThan(3);
    expect(await page.textContent('body')).toContain('dead letters');

    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: join(SHOTS, 'report.png'), fullPage: true });
    expect(problems).toEqual([]);
    expect(requests).toEqual([]);
  });
});
