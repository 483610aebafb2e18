/**
 * Three projects: unit (no network), integration (real RabbitMQ and Redis on localhost) and cluster
 * (starts its own three-node RabbitMQ cluster and Redis Cluster; slow, `npm run test:cluster`).
 * ts-jest only transpiles (isolatedModules); `npm run typecheck` does the type checking.
 */
const transform = {
  '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/test/tsconfig.jest.json', diagnostics: false }],
};
module.exports = {
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/test/unit/**/*.test.ts'],
    },
    {
      displayName: 'integration',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
    },
    {
      displayName: 'cluster',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/test/cluster/**/*.test.ts'],
    },
  ],
};
