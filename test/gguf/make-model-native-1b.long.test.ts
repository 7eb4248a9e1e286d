// The C++ make-model port against `relu-serve make-model` at 1b size, byte for byte (see
// make-model-native.test.ts for the small cases). In `npm run test:long` (CI runs it), not
// `npm test`: it writes two 650 MB files.
import { test } from 'node:test';
import { assertSameBytes } from './same-bytes.js';

// 1b-shaped (2048 wide, 16 layers, 650 MB), one case: on the 2-core development machine the
// TS writer takes 10-16 s and the C++ tool 4-8 s; this test took 13-15 s (22-25 s while
// the machine was busy with builds). 7b (4 GB, 90 s in TS) is not compared here; its hash
// from the C++ tool on a GPU machine matched the TS writer's when the tool was written.
test('the same bytes at 1b: bamboo q4_0 sparse', () =>
  assertSameBytes(['--arch', 'bamboo', '--size', '1b', '--type', 'q4_0', '--sparse', '--seed', '1']));
