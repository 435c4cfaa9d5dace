import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { lambdaNodeBin, lambdaNodeMajor } from '../../../bench/lambda-node';

describe('lambda-node (benchmarks on the Lambda runtime Node.js major)', () => {
  it("reads the provider runtime's major from serverless.yml", () => {
    expect(lambdaNodeMajor(readFileSync('serverless.yml', 'utf8'))).toBe(22);
    expect(() => lambdaNodeMajor('provider:\n  runtime: python3.12\n')).toThrow(/nodejs<major>\.x/);
    // The provider's, quoted or commented, not a function's of its own.
    const yml =
      'functions:\n  f:\n    runtime: nodejs20.x\nprovider:\n  name: aws\n\n  runtime: "nodejs24.x" # Lambda\n';
    expect(lambdaNodeMajor(yml)).toBe(24);
  });

  it('leaves PATH alone when the running node is that major', () => {
    expect(lambdaNodeBin(22, 'v22.23.5', () => true)).toEqual({ bin: undefined });
  });

  it("puts .ci/node's binary of that major first when the running node is another", () => {
    const { bin, missing } = lambdaNodeBin(22, 'v20.20.2', () => true);
    expect(bin).toMatch(/\.ci\/node\/node_modules\/node22\/bin$/);
    expect(missing).toBeUndefined();
  });

  it('runs on the node it has and says what to install when .ci/node lacks it', () => {
    const { bin, missing } = lambdaNodeBin(22, 'v24.1.0', () => false);
    expect(bin).toBeUndefined();
    expect(missing).toContain('npm ci --prefix .ci/node');
    expect(missing).toContain('v24.1.0');
  });
});
