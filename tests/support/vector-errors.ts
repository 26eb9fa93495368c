/**
 * How the TypeScript and C implementations word each class of refusal of the
 * invalid golden vectors (tests/vectors/README.md). They word them alike, so one
 * table serves both.
 */
export const ERRORS: Record<string, RegExp> = {
  magic: /bad magic/,
  version: /protocol version 2, this node speaks version 1/,
  kind: /kind/,
  location: /location/,
  truncated: /truncated|exceed the frame/,
  trailing: /trailing bytes/,
  'payload-length': /header announced/,
  frames: /frames, expected/,
  range: /outside|shorter|exceed|empty/,
  'null-count': /null count/,
  buffers: /buffers|absent/,
  format: /format string/,
  children: /no children/,
  depth: /too deeply/,
  utf8: /not valid UTF-8/,
  parameter: /parameter/,
  'shm-offset': /not a multiple of 64/,
  'shm-missing': /does not exist/,
  'shm-range': /outside the 4096-byte segment/,
  'shm-name': /not a dora-ts segment name/,
};
