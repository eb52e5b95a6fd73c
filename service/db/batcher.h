/* Group commit for hot paths: request threads submit work and block; one
 * thread runs everything submitted meanwhile as one batch (a few
 * statements for the whole batch instead of a few per request), then wakes
 * the submitters.  Batches grow by themselves with load. */
#ifndef MACHTIGEN_BATCHER_H
#define MACHTIGEN_BATCHER_H

#include <pthread.h>
#include <stdbool.h>

#define BATCH_MAX 256

struct batch_waiter;

struct batcher {
  const char *name;
  /* Runs on the batcher's thread; items are the submitted pointers. */
  void (*run)(void **items, int n);
  pthread_mutex_t lock;
  pthread_cond_t ready;
  pthread_cond_t done;
  struct batch_waiter *head, *tail;
  bool stop, running;
  pthread_t thread;
};

#define BATCHER_INIT(n, fn)                                                                        \
  {                                                                                                \
    .name = (n), .run = (fn), .lock = PTHREAD_MUTEX_INITIALIZER,                                   \
    .ready = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER                            \
  }

bool batcher_start(struct batcher *b);
void batcher_stop(struct batcher *b);
/* Blocks until the batch holding item ran; false when the batcher is not
 * running (the item was not run). */
bool batcher_submit(struct batcher *b, void *item);

#endif
