import { describe, expect, it } from 'vitest';
import { problemOf } from '../../src/api/plugins/errors.js';
import { AppError } from '../../src/errors.js';

describe('problemOf: any error as the problem object it answers with', () => {
  it('an AppError as it says, with its field errors', () => {
    const errors = [{ path: 'body/items/0/sku', message: 'unknown SKU "X"' }];
    expect(problemOf(new AppError(422, 'unknown_sku', 'Unknown SKU: X.', { errors }))).toEqual({
      type: 'urn:surgeline:problem:unknown_sku',
      title: 'Unprocessable Content',
      status: 422,
      detail: 'Unknown SKU: X.',
      code: 'unknown_sku',
      errors,
    });
  });

  it('an unreachable dependency, wrapped or not, as 503', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    const wrapped = new Error('Failed query: select … params: Li Wei', { cause: refused });
    expect(problemOf(wrapped)).toMatchObject({ status: 503, code: 'unavailable' });
  });

  it('anything else as a 500 that says nothing of its cause', () => {
    const problem = problemOf(new Error('Failed query: insert into orders … params: +8613800000000'));
    expect(problem).toMatchObject({ status: 500, code: 'internal_error' });
    expect(JSON.stringify(problem)).not.toMatch(/insert|params|\+86/);
  });
});
