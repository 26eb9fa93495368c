/**
 * dora's typed ports: `input_types`/`output_types` checked when the descriptor is read
 * (warnings, or errors with --strict-types / strict_types), and what a node sends checked
 * against its declared type at run time with DORA_RUNTIME_TYPE_CHECK.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { dora, leftovers, node, tempDataflow } from './support/dataflow';

afterEach(() => expect(leftovers()).toEqual([]));

/** A typed sender → receiver edge; with a typed timer input too, except for dataflows that are run (a timer never ends). */
const typed = (outType: string, inType: string, timer = true) =>
  `nodes:\n` +
  node('sender', 'sender.ts', `    env: { COUNT: 3 }\n    outputs: [out]\n    output_types:\n      out: ${outType}\n    output_metadata:\n      out: [seq, tag]\n`) +
  node(
    'r',
    'recorder.ts',
    `    env: { RECORD: ./r.jsonl }\n    inputs:\n      data: sender/out\n${timer ? '      tick: dora/timer/millis/500\n' : ''}    input_types:\n      data: ${inType}\n` +
      (timer ? '      tick: std/core/v1/UInt64\n' : ''),
  );

test('incompatible connected ports: a warning with its position, an error with --strict-types or strict_types: true', async () => {
  const df = tempDataflow(typed('std/core/v1/Int64', 'std/core/v1/Float64'));
  const check = await dora(['check', df.file]);
  expect(check.code).toBe(0);
  expect(check.stderr).toMatch(/warning: .*dataflow\.yml:\d+:\d+: node "r": at \/nodes\/1\/input_types\/data: input `data` of node `r` expects `std\/core\/v1\/Float64`, but `sender\/out` is declared `std\/core\/v1\/Int64`/);
  const strict = await dora(['validate', '--strict-types', df.file]);
  expect(strict.code).toBe(1);
  expect(strict.stderr).toMatch(/1 error in dataflow descriptor[\s\S]*expects `std\/core\/v1\/Float64`/);
  fs.writeFileSync(df.file, `strict_types: true\n` + fs.readFileSync(df.file, 'utf8'));
  expect((await dora(['check', df.file])).code).toBe(1);
});

test('compatible types pass: equal URNs, Bytes accepting anything, lists, parameter wildcards', async () => {
  for (const [out, input] of [
    ['std/core/v1/Int64', 'std/core/v1/Int64'],
    ['std/core/v1/Int64', 'std/core/v1/Bytes'],
    ['std/core/v1/List<Float32>', 'std/core/v1/List<std/core/v1/Float32>'],
    ['std/media/v1/AudioFrame[sample_type=f32]', 'std/media/v1/AudioFrame'],
  ]) {
    const df = tempDataflow(typed(out, input));
    const check = await dora(['check', '--strict-types', df.file]);
    expect([out, input, check.code, check.stderr]).toEqual([out, input, 0, '']);
  }
  const df = tempDataflow(typed('std/media/v1/AudioFrame[sample_type=f32]', 'std/media/v1/AudioFrame[sample_type=i16]'));
  expect((await dora(['check', '--strict-types', df.file])).stderr).toMatch(/expects `std\/media\/v1\/AudioFrame\[sample_type=i16\]`/);
});

test('unknown types and ports: errors with a suggestion and the position', async () => {
  const df = tempDataflow(typed('std/core/v1/Flaot64', 'std/core/v1/Int64').replace('      tick: std/core/v1/UInt64\n', '      tick: std/core/v1/UInt64\n      nope: std/core/v1/Bool\n'));
  const check = await dora(['check', df.file]);
  expect(check.code).toBe(1);
  expect(check.stderr).toMatch(/:\d+:\d+: node "sender": at \/nodes\/0\/output_types\/out: unknown type `std\/core\/v1\/Flaot64` \(did you mean `std\/core\/v1\/Float64`\?\)/);
  expect(check.stderr).toMatch(/node "r": at \/nodes\/1\/input_types\/nope: `input_types` names `nope`, which is not an input of node `r` \(hint: its inputs: data, tick\)/);
});

test('DORA_RUNTIME_TYPE_CHECK: warn logs a mismatched send once, error makes the send fail', async () => {
  // sender.ts sends int64 arrays; declared Float64 they do not match (declared Int64 they do)
  const mismatched = tempDataflow(typed('std/core/v1/Float64', 'std/core/v1/Float64', false));
  const warned = await dora(['run', mismatched.file], { cwd: mismatched.dir, env: { DORA_RUNTIME_TYPE_CHECK: 'warn' } });
  expect(warned.code).toBe(0);
  const warnings = warned.stdout.split('\n').filter((l) => l.includes('is declared std/core/v1/Float64, but sent Arrow format "l"'));
  expect(warnings).toHaveLength(1);
  const failed = await dora(['run', mismatched.file], { cwd: mismatched.dir, env: { DORA_RUNTIME_TYPE_CHECK: 'error' } });
  expect(failed.code).toBe(1);
  expect(failed.stderr).toMatch(/node "sender" failed[\s\S]*output "out" is declared std\/core\/v1\/Float64, but this message's Arrow format is "l"/);
  const matching = tempDataflow(typed('std/core/v1/Int64', 'std/core/v1/Int64', false));
  const ok = await dora(['run', matching.file], { cwd: matching.dir, env: { DORA_RUNTIME_TYPE_CHECK: 'error' } });
  expect(ok.code).toBe(0);
  expect(fs.readFileSync(path.join(matching.dir, 'r.jsonl'), 'utf8').match(/"type":"INPUT","id":"data"/g)).toHaveLength(3);
});
