import { ignoredServiceLinks, isServiceLinkVariable, loadConfig } from '../../../src/config/config';

/** What a kubelet injects for a Service `name` with a cluster IP and one TCP port (enableServiceLinks on). */
function linkVariables(service: string, ip: string, port: number, portName?: string): Record<string, string> {
  const n = service.toUpperCase().replace(/-/g, '_');
  return {
    [`${n}_SERVICE_HOST`]: ip,
    [`${n}_SERVICE_PORT`]: String(port),
    ...(portName === undefined ? {} : { [`${n}_SERVICE_PORT_${portName.toUpperCase().replace(/-/g, '_')}`]: String(port) }),
    [`${n}_PORT`]: `tcp://${ip}:${port}`,
    [`${n}_PORT_${port}_TCP`]: `tcp://${ip}:${port}`,
    [`${n}_PORT_${port}_TCP_PROTO`]: 'tcp',
    [`${n}_PORT_${port}_TCP_PORT`]: String(port),
    [`${n}_PORT_${port}_TCP_ADDR`]: ip,
  };
}

describe('Kubernetes service-link variables', () => {
  it('starts under the variables of a Service named gateway: GATEWAY_PORT=tcp://… is ignored, not parsed', () => {
    const env = linkVariables('gateway', '10.96.0.12', 8080, 'http');
    expect(env.GATEWAY_PORT).toBe('tcp://10.96.0.12:8080');
    const config = loadConfig(env);
    expect(config.gateway.port).toBe(8080); // the default, not the link's value
    // Named in the warning: the one the configuration would have read. GATEWAY_SERVICE_HOST and the
    // others are no setting and no likely misspelling of one, so they never mattered.
    expect(ignoredServiceLinks(env)).toEqual(['GATEWAY_PORT']);
  });

  it('starts under the variables of Services with PIPELINE_ names, health, amqp and redis', () => {
    const env = {
      ...linkVariables('pipeline-anything', '10.0.0.1', 9464, 'health'),
      ...linkVariables('pipeline-strategic-0', '10.0.0.2', 9464, 'health'),
      ...linkVariables('health', '10.0.0.3', 9464),
      ...linkVariables('amqp', '10.0.0.4', 5672),
      ...linkVariables('redis', 'fd00::5', 6379),
      KUBERNETES_SERVICE_HOST: '10.96.0.1',
      KUBERNETES_SERVICE_PORT: '443',
      KUBERNETES_PORT: 'tcp://10.96.0.1:443',
      HEALTH_PORT: 'tcp://10.0.0.3:9464',
    };
    expect(() => loadConfig(env)).not.toThrow();
    expect(loadConfig(env).healthPort).toBe(9464);
    const ignored = ignoredServiceLinks(env);
    expect(ignored).toContain('PIPELINE_ANYTHING_SERVICE_HOST');
    expect(ignored).toContain('PIPELINE_STRATEGIC_0_PORT_9464_TCP_ADDR');
    expect(ignored).toContain('HEALTH_PORT');
    // Not ours: never named in the warning.
    expect(ignored).not.toContain('KUBERNETES_SERVICE_HOST');
    expect(ignored).not.toContain('KUBERNETES_PORT');
  });

  it('keeps a real setting strict: GATEWAY_PORT=80x and HEALTH_PORT=tcp:// without a port still stop the start', () => {
    expect(() => loadConfig({ GATEWAY_PORT: '80x' })).toThrow(/GATEWAY_PORT="80x": GATEWAY_PORT must be an integer/);
    expect(() => loadConfig({ HEALTH_PORT: 'tcp://10.0.0.3' })).toThrow(/HEALTH_PORT/);
    expect(() => loadConfig({ GATEWAY_PORT: 'http://10.96.0.12:8080' })).toThrow(/GATEWAY_PORT/);
    // A link-looking name whose value is no link value is still an unknown PIPELINE_ setting.
    expect(() => loadConfig({ PIPELINE_ANYTHING_SERVICE_HOST: 'not-an-ip' })).toThrow(/PIPELINE_ANYTHING_SERVICE_HOST is not a setting/);
    expect(() => loadConfig({ PIPELINE_PREFECTH: '10', ...linkVariables('gateway', '10.96.0.12', 8080) })).toThrow(/did you mean PIPELINE_PREFETCH/);
  });

  it('recognises each kind by name and value together', () => {
    expect(isServiceLinkVariable('PIPELINE_ANYTHING_SERVICE_HOST', '10.0.0.1')).toBe(true);
    expect(isServiceLinkVariable('X_SERVICE_PORT_HTTP_API', '8080')).toBe(true);
    expect(isServiceLinkVariable('GATEWAY_PORT', 'tcp://10.96.0.12:8080')).toBe(true);
    expect(isServiceLinkVariable('GATEWAY_PORT', 'udp://[fd00::12]:53')).toBe(true);
    expect(isServiceLinkVariable('GATEWAY_PORT_8080_TCP_PROTO', 'tcp')).toBe(true);
    expect(isServiceLinkVariable('GATEWAY_PORT', '8080')).toBe(false);
    expect(isServiceLinkVariable('GATEWAY_PORT', '80x')).toBe(false);
    expect(isServiceLinkVariable('X_SERVICE_HOST', 'db.example')).toBe(false);
    expect(isServiceLinkVariable('X_PORT_8080_TCP_PORT', 'eighty')).toBe(false);
    expect(isServiceLinkVariable('PIPELINE_PREFETCH', '10')).toBe(false);
  });
});
