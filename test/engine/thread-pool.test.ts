// The engine's thread pool (addon/src/thread_pool.cpp), compiled on its own with a small
// C++ driver: every task of every job runs exactly once, on one of the pool's threads,
// and run() returns only when all have finished, across many back-to-back jobs of any
// size (the forward pass issues hundreds per token), including jobs larger than one
// ticket holds (65535 tasks) and jobs whose tasks take long enough for the OS to
// deschedule a thread mid-job.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

const DRIVER = String.raw`
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>
#include "thread_pool.h"

int main() {
  int fails = 0, jobs = 0;
  for (int threads : {1, 2, 4, 7}) {
    rs::ThreadPool pool(threads);
    std::vector<std::atomic<int>> hits(70000);
    const int sizes[] = {0, 1, 2, 3, 5, 16, 100, 1000, 65535, 65536, 70000};
    for (int round = 0; round < 200; round++) {
      const int n = sizes[round % 11];
      if (n > 1000 && round > 22) continue;  // the big ones twice per pool
      for (int i = 0; i < n; i++) hits[i].store(0);
      std::atomic<int> bad_thread{0};
      // Every 5th job: some tasks sleep, so threads finish out of step.
      pool.run(n, [&](int t, int th) {
        if (th < 0 || th >= threads) bad_thread.store(1);
        if (round % 5 == 0 && n <= 1000 && t % 7 == 3) std::this_thread::sleep_for(std::chrono::microseconds(200));
        hits[t].fetch_add(1);
      });
      jobs++;
      for (int i = 0; i < n; i++)
        if (hits[i].load() != 1) {
          if (fails++ < 10) std::printf("FAIL threads=%d job=%d n=%d task %d ran %d times\n", threads, round, n, i, hits[i].load());
        }
      if (bad_thread.load()) std::printf("FAIL threads=%d job=%d: a thread id out of range\n", threads, round), fails++;
    }
  }
  std::printf("jobs %d fails %d\n", jobs, fails);
  return fails != 0;
}
`;

test('every task of every job runs exactly once, and run() returns after all of them', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rs-pool-'));
  try {
    const src = join(dir, 'driver.cpp'), exe = join(dir, 'driver');
    writeFileSync(src, DRIVER);
    execFileSync('c++', ['-O2', '-std=c++17', '-pthread', '-I', join(ROOT, 'addon/src'), src, join(ROOT, 'addon/src/thread_pool.cpp'), join(ROOT, 'addon/src/fault_guard.cpp'), '-o', exe]);
    const out = execFileSync(exe, { encoding: 'utf8', timeout: 120_000 });
    assert.match(out, /^jobs \d+ fails 0$/m, out.slice(0, 2000));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
