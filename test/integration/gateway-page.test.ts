import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { generateSyntheticMarket } from '../../src/producers/synthetic-market';
import { createVhost, waitFor, type TestVhost } from '../fixtures/broker';
import { freePort, testKeys } from '../fixtures/gateway';
import { clearRedis, startPipeline, waitHealthy, type TestPipeline } from '../fixtures/pipeline';

jest.setTimeout(240_000);

/** Where the screenshot goes (gitignored). */
const OUTPUT_DIR = join(__dirname, '..', '..', 'test-output', 'gateway');

/**
 * The live page in headless Chromium (Debian's chromium, driven by playwright-core): it loads with no
 * console error, draws its chart from the recent results, and draws new bars as they are published.
 */
describe('live page', () => {
  let vhost: TestVhost;
  let pipeline: TestPipeline;
  let browser: BrowserContext;
  let profile: string;
  let base: string;
  const keys = testKeys();

  const publish = async (bars: unknown[]): Promise<void> => {
    const res = await fetch(`${base}/api/bars`, { method: 'POST', headers: { authorization: `Bearer ${keys.operator}`, 'content-type': 'application/json' }, body: JSON.stringify(bars) });
    expect(res.status).toBe(202);
  };
  // Page-side code is passed as text: the tests compile without the DOM library.
  const drawn = (page: Page, symbol: string): Promise<number> => page.evaluate(`window.__gateway.bars[${JSON.stringify(symbol)}] || 0`);

  beforeAll(async () => {
    vhost = await createVhost('gateway-page');
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    pipeline = await startPipeline(vhost.url, { GATEWAY_PORT: String(port), GATEWAY_API_KEYS: keys.setting });
    await waitHealthy(pipeline);
    profile = mkdtempSync(join(tmpdir(), 'gateway-chromium-'));
    // A fresh user-data-dir (playwright passes it as --user-data-dir).
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1400, height: 900 },
    });
  });

  afterAll(async () => {
    await browser?.close();
    rmSync(profile, { recursive: true, force: true });
    await pipeline?.stop();
    await clearRedis(pipeline.prefix);
    await vhost?.dispose();
  });

  it('loads with no console error, draws the chart and appends bars as they are published', async () => {
    const market = generateSyntheticMarket({ seed: 5, symbol: 'PAGE', bars: 400 }).bars;
    const other = generateSyntheticMarket({ seed: 6, symbol: 'PAGE.B', bars: 400 }).bars;
    await publish([...market.slice(0, 300), ...other.slice(0, 300)]);
    await waitFor(async () => {
      const res = await fetch(`${base}/api/results/PAGE.B?limit=1000`, { headers: { authorization: `Bearer ${keys.viewer}` } });
      return ((await res.json()) as unknown[]).length === 300;
    }, 120_000, 'first results');

    const page = await browser.newPage();
    const errors: string[] = [];
    const outside: string[] = [];
    page.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(msg.text());
    });
    page.on('pageerror', (err) => errors.push(err.message));
    const urls: string[] = [];
    page.on('request', (req) => {
      urls.push(req.url());
      if (!req.url().startsWith(base)) outside.push(req.url());
    });
    page.on('websocket', (ws) => urls.push(ws.url()));
    await page.goto(`${base}/?symbols=PAGE,PAGE.B`);
    await page.fill('#key', keys.viewer);
    await page.click('#connect');
    await waitFor(async () => (await drawn(page, 'PAGE')) === 300 && (await drawn(page, 'PAGE.B')) === 300, 30_000, 'history drawn');
    expect(await page.evaluate("sessionStorage.getItem('gatewayKey')")).toBe(keys.viewer);

    // New bars arrive over the WebSocket and are drawn.
    await publish([...market.slice(300), ...other.slice(300)]);
    await waitFor(async () => (await drawn(page, 'PAGE')) === 400 && (await drawn(page, 'PAGE.B')) === 400, 120_000, 'new bars drawn');
    expect(await page.evaluate('window.__gateway.frames')).toBe(200);
    // Stats frames fill the header (they come every 2 s).
    await waitFor(async () => (await page.textContent('#s-rate')) !== '-', 10_000, 'stats');

    // The chart drew something: its canvases hold many colours, not a blank background.
    const colours = await page.evaluate<number>(`(() => {
      const seen = new Set();
      for (const c of document.querySelectorAll('[data-symbol="PAGE"] canvas')) {
        const ctx = c.getContext('2d');
        if (ctx === null || c.width === 0 || c.height === 0) continue;
        const data = ctx.getImageData(0, 0, c.width, c.height).data;
        for (let i = 0; i < data.length; i += 16) seen.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
      }
      return seen.size;
    })()`);
    expect(colours).toBeGreaterThan(20);
    expect(await page.textContent('[data-symbol="PAGE"] .f-close')).toBe(String(market[399]!.close));

    mkdirSync(OUTPUT_DIR, { recursive: true });
    await page.screenshot({ path: join(OUTPUT_DIR, 'live-page.png'), fullPage: true });
    expect(errors).toEqual([]);
    expect(outside).toEqual([]);
    // The socket was opened with a ticket; the key was never in a URL.
    expect(urls.some((u) => u.includes('/ws?') && u.includes('ticket='))).toBe(true);
    expect(urls.filter((u) => u.includes(keys.viewer))).toEqual([]);
  });
});
