import { loadConfig } from '../../../src/config/config';
import { rolesFor } from '../../../src/supervisor/ipc';
import { Supervisor } from '../../../src/supervisor/supervisor';

/**
 * The compose file's trainer container with training off (its default): PIPELINE_ROLES=trainer,
 * PIPELINE_TRAINING=off leaves the supervisor no worker to run. It must be healthy and idle (so
 * the container is up and scraped), not 503 for ever (restarted in a loop by its healthcheck).
 */
describe('a supervisor with no role to run', () => {
  it('answers /health 200 with the reason it is idle, and stops cleanly', async () => {
    const config = loadConfig({ HEALTH_PORT: '0', PIPELINE_ROLES: 'trainer', PIPELINE_TRAINING: 'off' });
    expect(rolesFor(config)).toEqual([]);
    const supervisor = new Supervisor({
      config,
      roles: rolesFor(config),
      layout: { current: { generation: 0, shards: 1 }, next: null, phase: null },
    });
    try {
      await supervisor.start();
      const res = await fetch(`http://127.0.0.1:${supervisor.healthPort}/health`);
      const body = (await res.json()) as { workers: object; idle?: string };
      expect(res.status).toBe(200);
      expect(body.workers).toEqual({});
      expect(body.idle).toMatch(/PIPELINE_TRAINING=on/);
    } finally {
      await supervisor.stop();
    }
  });
});
