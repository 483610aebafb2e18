import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QUEUE_RESULTS } from '../../src/broker/topology';
import { generateSyntheticMarket } from '../../src/producers/synthetic-market';
import { createVhost, interleave, publishBars, QueueCollector, waitFor, type TestVhost } from '../fixtures/broker';
import { clearRedis, startPipeline, waitHealthy, type TestPipeline } from '../fixtures/pipeline';

jest.setTimeout(240_000);

/**
 * Issue 26: the live workers never load tfjs or onnxruntime (tfjs is only the tests' oracle, ONNX
 * only an export). The supervisor forks the strategic and tactical workers as it always does; the
 * environment it passes on preloads test/fixtures/loaded-modules-hook.cjs, which writes at exit every
 * module the worker loaded (CommonJS `require.cache` and the URLs the ESM loader resolved). Bars go
 * through first, so the modules of the decision path (loaded lazily or not) are in the lists.
 */
const HOOK = join(__dirname, '..', 'fixtures', 'loaded-modules-hook.cjs');
const FORBIDDEN = /[\\/]node_modules[\\/](@tensorflow[\\/]|onnxruntime-node[\\/])/;

interface ModuleList {
  argv: string[];
  cjs: string[];
  esm: string[];
}

describe('modules the live workers load', () => {
  let vhost: TestVhost;
  let pipeline: TestPipeline | undefined;
  let dir: string;
  const lists = new Map<string, ModuleList[]>();

  beforeAll(async () => {
    vhost = await createVhost('worker-modules');
    dir = mkdtempSync(join(tmpdir(), 'worker-modules-'));
    pipeline = await startPipeline(vhost.url, {
      PIPELINE_ROLES: 'strategic,tactical',
      LOADED_MODULES_DIR: dir,
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${HOOK}`.trim(),
    });
    await waitHealthy(pipeline);
    const results = new QueueCollector(vhost.url, QUEUE_RESULTS);
    await results.start();
    const bars = interleave(['BTCUSD', 'ETHUSD'].map((symbol, i) => generateSyntheticMarket({ seed: 40 + i, symbol, bars: 200 }).bars));
    await publishBars(vhost.url, bars);
    await waitFor(() => results.messages.length >= bars.length, 120_000, `${bars.length} results`);
    await results.stop();
    await pipeline.stop(); // the workers write their lists as they exit
    for (const file of readdirSync(dir)) {
      const list = JSON.parse(readFileSync(join(dir, file), 'utf8')) as ModuleList;
      const role = file.startsWith('worker-main-') ? (list.argv[1] ?? '?') : `other: ${file}`;
      lists.set(role, [...(lists.get(role) ?? []), list]);
    }
  });

  afterAll(async () => {
    if (pipeline) await clearRedis(pipeline.prefix);
    await vhost?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    ['strategic', 'src/strategic/'],
    ['tactical', 'src/learning/simd-dense-net.ts'],
  ])('the %s worker loads no @tensorflow/* and no onnxruntime-node', (role, ownCompute) => {
    const found = lists.get(role) ?? [];
    expect(found).toHaveLength(1);
    const { cjs, esm } = found[0]!;
    // The list is the worker's: its entry point and its own compute are in it.
    expect(cjs.some((p) => p.endsWith(join('src', 'supervisor', 'worker-main.ts')))).toBe(true);
    expect(cjs.some((p) => p.includes(join(...ownCompute.split('/'))))).toBe(true);
    expect([...cjs, ...esm.map((u) => decodeURIComponent(u))].filter((p) => FORBIDDEN.test(p))).toEqual([]);
  });
});
