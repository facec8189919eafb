import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { awsError, isTransientAwsError } from '../../lambda/handler/aws-errors.ts';

const sdk = (fields: Record<string, unknown>) => Object.assign(new Error('x'), fields);

describe('AWS SDK failures in the shared vocabulary', () => {
  test('throttling, 5xx and network failures are transient', () => {
    assert.equal(isTransientAwsError(sdk({ name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } })), true);
    assert.equal(isTransientAwsError(sdk({ $metadata: { httpStatusCode: 503 } })), true);
    assert.equal(isTransientAwsError(sdk({ code: 'ECONNREFUSED' })), true);
    assert.equal(isTransientAwsError(sdk({ name: 'TimeoutError' })), true);
  });

  test('client errors and failures nobody classified are permanent (unknown is never retried)', () => {
    assert.equal(isTransientAwsError(sdk({ name: 'AccessDeniedException', $fault: 'client', $metadata: { httpStatusCode: 403 } })), false);
    assert.equal(isTransientAwsError(sdk({ $metadata: { httpStatusCode: 501 } })), false);
    assert.equal(isTransientAwsError(new Error('something odd')), false);
    assert.equal(awsError('events:PutEvents', new Error('something odd\nmore')).kind, 'permanent');
  });
});
