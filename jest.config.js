/** @type {import('jest').Config} */
const swc = ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } } }];
const base = { transform: { '^.+\\.ts$': swc }, testEnvironment: 'node' };
module.exports = {
  projects: [
    { ...base, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    { ...base, displayName: 'meta', testMatch: ['<rootDir>/test/meta/**/*.test.ts'] },
    { ...base, displayName: 'synth', testMatch: ['<rootDir>/test/synth/**/*.test.ts'] },
    {
      ...base,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts', '<rootDir>/test/agent/**/*.test.ts'],
    },
  ],
};
