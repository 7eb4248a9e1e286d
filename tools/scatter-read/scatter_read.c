/* How fast this machine reads the sparse FFN's access pattern: blocks of BLOCK bytes
 * (one neuron's gate | up | down rows) at a random 1-in-DENSITY of NEURONS per layer,
 * LAYERS layers (far larger than the caches), in ascending order within a layer as the
 * engine visits them, split between THREADS threads. Nothing is computed: the loop only
 * loads every 64-byte line, so this is the ceiling for that pattern, against which the
 * sparse FFN's GB/s (`bench`'s time/token line) is judged. Best of 8 passes, each with a
 * fresh random choice of blocks.
 *
 *   cc -O2 -mavx2 -pthread tools/scatter-read/scatter_read.c -o /tmp/scatter-read
 *   /tmp/scatter-read THREADS SIDE_BY_SIDE PREFETCH_AHEAD DENSITY [BLOCK] [HUGE]
 *
 * SIDE_BY_SIDE: blocks read together, line by line (1: one block after another);
 * PREFETCH_AHEAD: prefetcht2 of the block this many ahead (0: none); DENSITY 10: 10%,
 * 1: every block (the sequential baseline); BLOCK default 3456 (1b Q4_0: 2048 columns x
 * 3 rows of 1152 bytes); HUGE 1: madvise(MADV_HUGEPAGE) on the buffer. */
#define _GNU_SOURCE
#include <immintrin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

enum { NEURONS = 8192, LAYERS = 16, MAX_SIDE = 16 };

typedef struct {
  const uint8_t *mem;     /* LAYERS x NEURONS blocks */
  size_t block;           /* bytes per block */
  const int32_t *act;     /* [LAYERS][NEURONS]: active block ids, ascending */
  const int *n_act;       /* [LAYERS] */
  int threads, side, ahead;
  pthread_barrier_t *bar; /* one wait per layer, as the engine's job per layer */
} plan_t;

typedef struct {
  const plan_t *p;
  int t;
  uint64_t sink;
} worker_t;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *run(void *arg) {
  worker_t *w = arg;
  const plan_t *p = w->p;
  __m256i acc = _mm256_setzero_si256();
  for (int l = 0; l < LAYERS; l++) {
    pthread_barrier_wait(p->bar);
    const int n = p->n_act[l], k0 = (int)((int64_t)n * w->t / p->threads), k1 = (int)((int64_t)n * (w->t + 1) / p->threads);
    const int32_t *ids = p->act + (size_t)l * NEURONS;
    const uint8_t *base = p->mem + (size_t)l * NEURONS * p->block;
    for (int k = k0; k < k1; k += p->side) {
      const int m = k1 - k < p->side ? k1 - k : p->side;
      const uint8_t *b[MAX_SIDE];
      for (int i = 0; i < m; i++) {
        b[i] = base + (size_t)ids[k + i] * p->block;
        if (p->ahead && k + i + p->ahead < k1) {
          const uint8_t *f = base + (size_t)ids[k + i + p->ahead] * p->block;
          for (size_t o = 0; o < p->block; o += 64) _mm_prefetch((const char *)f + o, _MM_HINT_T2);
        }
      }
      for (size_t o = 0; o + 32 <= p->block; o += 32)
        for (int i = 0; i < m; i++) acc = _mm256_add_epi64(acc, _mm256_loadu_si256((const __m256i *)(b[i] + o)));
    }
  }
  uint64_t lanes[4];
  _mm256_storeu_si256((__m256i *)lanes, acc);
  w->sink = lanes[0] ^ lanes[1] ^ lanes[2] ^ lanes[3];
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s THREADS SIDE_BY_SIDE PREFETCH_AHEAD DENSITY [BLOCK] [HUGE]\n", argv[0]);
    return 2;
  }
  const int threads = atoi(argv[1]), side = atoi(argv[2]), ahead = atoi(argv[3]), density = atoi(argv[4]);
  const size_t block = argc > 5 ? (size_t)atol(argv[5]) : 3456;
  const int huge = argc > 6 && atoi(argv[6]);
  if (threads < 1 || threads > 64 || side < 1 || side > MAX_SIDE || ahead < 0 || density < 1 || block < 64) {
    fprintf(stderr, "bad arguments: threads 1..64, side 1..%d, ahead >= 0, density >= 1, block >= 64\n", MAX_SIDE);
    return 2;
  }
  const size_t bytes = (size_t)LAYERS * NEURONS * block;
  uint8_t *mem = aligned_alloc(1 << 21, (bytes + (1 << 21) - 1) / (1 << 21) * (1 << 21));
  int32_t *act = malloc(sizeof(int32_t) * LAYERS * NEURONS);
  if (!mem || !act) {
    fprintf(stderr, "out of memory (%zu bytes)\n", bytes);
    return 1;
  }
  if (huge) madvise(mem, bytes, MADV_HUGEPAGE);
  memset(mem, 1, bytes);
  int n_act[LAYERS];
  pthread_barrier_t bar;
  plan_t p = {mem, block, act, n_act, threads, side, ahead, &bar};
  srand(1);
  double best = 1e30;
  size_t read = 0;
  uint64_t sink = 0;
  for (int pass = 0; pass < 8; pass++) {
    read = 0;
    for (int l = 0; l < LAYERS; l++) {
      n_act[l] = 0;
      for (int i = 0; i < NEURONS; i++)
        if (rand() % density == 0) act[(size_t)l * NEURONS + n_act[l]++] = i;
      read += (size_t)n_act[l] * block;
    }
    pthread_barrier_init(&bar, NULL, (unsigned)threads);
    pthread_t th[64];
    worker_t w[64];
    const double t0 = now_s();
    for (int t = 0; t < threads; t++) {
      w[t] = (worker_t){&p, t, 0};
      pthread_create(&th[t], NULL, run, &w[t]);
    }
    for (int t = 0; t < threads; t++) {
      pthread_join(th[t], NULL);
      sink ^= w[t].sink;
    }
    const double dt = now_s() - t0;
    if (dt < best) best = dt;
    pthread_barrier_destroy(&bar);
  }
  printf("threads %d, side by side %d, prefetch %d ahead, 1 in %d of %d blocks of %zu bytes x %d layers%s: %.1f GB/s (sink %llx)\n",
         threads, side, ahead, density, NEURONS, block, LAYERS, huge ? ", huge pages" : "", read / best / 1e9,
         (unsigned long long)(sink & 0xf));
  free(act);
  free(mem);
  return 0;
}
