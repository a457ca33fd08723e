import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseEvents } from './events.js';

test('complete events are split off, the rest kept for the next chunk', () => {
  const { events, rest } = parseEvents('event: next\ndata: {"data":1}\n\n: keep-alive\n\nevent: comp');
  assert.deepEqual(events, [{ event: 'next', data: '{"data":1}' }]);
  assert.equal(rest, 'event: comp');
  const more = parseEvents(`${rest}lete\ndata:\n\n`);
  assert.deepEqual(more.events, [{ event: 'complete', data: '' }]);
});

test('data lines join with newlines, CRLF is read as LF', () => {
  const { events } = parseEvents('event: next\r\ndata: {"a":\r\ndata: 2}\r\n\r\n');
  assert.deepEqual(events, [{ event: 'next', data: '{"a":\n2}' }]);
});

test('the operation that runs decides whether the fetcher streams', async () => {
  const { isSubscription } = await import('./fetcher.js');
  assert.equal(isSubscription('subscription Live { serviceAlerts { cursor } }'), true);
  assert.equal(isSubscription('# subscription in a comment\n{ alerts { hasNextPage } }'), false);
  const two = 'query A { alerts { hasNextPage } } subscription B { serviceAlerts { cursor } }';
  assert.equal(isSubscription(two, 'A'), false);
  assert.equal(isSubscription(two, 'B'), true);
});
