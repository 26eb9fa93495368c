/** The pieces of record/replay and `dora ui` that need no processes: parameters as JSON, the UI's refusals, the `--port` spelling. */
import { parametersFromJson, parametersToJson, segmentFile } from '../cli/record/format';
import { refusal } from '../cli/ui/server';
import { uiPortSpelling } from '../cli/ui/command';

test('parameters survive JSON: integers beyond 2^53 and dates tagged, the rest plain JSON', () => {
  const parameters = { seq: 3, ratio: 0.5, name: 'x', ok: true, big: 1n << 60n, small: 7n, at: new Date('2026-11-30T13:44:30.123Z'), list: [1, 2], words: ['a'] };
  const json = parametersToJson(parameters);
  expect(JSON.parse(json)).toEqual({ seq: 3, ratio: 0.5, name: 'x', ok: true, big: { $int: '1152921504606846976' }, small: 7, at: { $date: '2026-11-30T13:44:30.123Z' }, list: [1, 2], words: ['a'] });
  expect(parametersFromJson(json)).toEqual({ ...parameters, small: 7 });
  expect(parametersToJson({})).toBe('{}');
});

test('an output keeps its file while its type holds; later types get ~1, ~2 (an output id has no ~)', () => {
  expect([segmentFile('cam', 'image', 0), segmentFile('cam', 'image', 2), segmentFile('n', 'op/out', 1)]).toEqual(['cam/image.arrows', 'cam/image~2.arrows', 'n/op/out~1.arrows']);
});

test('dora ui refuses a request without the token, from a foreign Host, or a cross-site write', () => {
  const token = 'secret';
  const ok = { method: 'GET', url: '/api/dataflows', headers: { host: '127.0.0.1:6281', 'x-dora-token': token } };
  expect(refusal(ok, token, 6281)).toBeUndefined();
  expect(refusal({ ...ok, headers: { ...ok.headers, host: 'localhost:6281' } }, token, 6281)).toBeUndefined();
  expect(refusal({ method: 'GET', url: `/?token=${token}`, headers: { host: '127.0.0.1:6281' } }, token, 6281)).toBeUndefined();
  expect(refusal({ method: 'GET', url: `/api/dataflows?token=${token}`, headers: { host: '127.0.0.1:6281' } }, token, 6281)).toMatch(/does not carry the token/);
  expect(refusal({ ...ok, headers: { ...ok.headers, 'x-dora-token': 'secreT' } }, token, 6281)).toMatch(/does not carry the token/);
  expect(refusal({ ...ok, headers: { ...ok.headers, host: 'rebound.example:6281' } }, token, 6281)).toBe('refused: Host "rebound.example:6281" is not this server (127.0.0.1:6281)');
  expect(refusal({ ...ok, headers: { ...ok.headers, host: '127.0.0.1:6282' } }, token, 6281)).toMatch(/is not this server/);
  const stop = { method: 'POST', url: '/api/stop', headers: { ...ok.headers, origin: 'http://127.0.0.1:6281', 'sec-fetch-site': 'same-origin' } };
  expect(refusal(stop, token, 6281)).toBeUndefined();
  expect(refusal({ ...stop, headers: { ...stop.headers, origin: 'http://evil.example' } }, token, 6281)).toBe('refused: a request from http://evil.example');
  expect(refusal({ ...stop, headers: { ...stop.headers, 'sec-fetch-site': 'same-site' } }, token, 6281)).toBe('refused: a same-site request');
});

test('--port after `ui` is the page’s port; before it, and on other commands, the coordinator’s', () => {
  const argv = (...a: string[]) => ['node', 'dora', ...a];
  expect(uiPortSpelling(argv('ui', '--port', '0'))).toEqual(argv('ui', '--ui-port', '0'));
  expect(uiPortSpelling(argv('--port', '7000', 'ui', 'demo', '--port=0'))).toEqual(argv('--port', '7000', 'ui', 'demo', '--ui-port=0'));
  expect(uiPortSpelling(argv('logs', 'ui', '--port', '7000'))).toEqual(argv('logs', 'ui', '--port', '7000'));
  expect(uiPortSpelling(argv('list', '--port', '7000'))).toEqual(argv('list', '--port', '7000'));
});
