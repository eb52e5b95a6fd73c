#include "db/batcher.h"

#include "db/db.h"

struct batch_waiter {
  void *item;
  bool done;
  struct batch_waiter *next;
};

static void *batcher_loop(void *arg) {
  struct batcher *b = arg;
  struct batch_waiter *batch[BATCH_MAX];
  void *items[BATCH_MAX];
  pthread_mutex_lock(&b->lock);
  for (;;) {
    while (b->head == NULL && !b->stop)
      pthread_cond_wait(&b->ready, &b->lock);
    if (b->head == NULL && b->stop)
      break;
    int n = 0;
    while (b->head != NULL && n < BATCH_MAX) {
      batch[n] = b->head;
      items[n] = b->head->item;
      b->head = b->head->next;
      n++;
    }
    if (b->head == NULL)
      b->tail = NULL;
    pthread_mutex_unlock(&b->lock);
    b->run(items, n);
    pthread_mutex_lock(&b->lock);
    for (int i = 0; i < n; i++)
      batch[i]->done = true;
    pthread_cond_broadcast(&b->done);
  }
  pthread_mutex_unlock(&b->lock);
  db_release();
  return NULL;
}

bool batcher_start(struct batcher *b) {
  b->stop = false;
  b->running = pthread_create(&b->thread, NULL, batcher_loop, b) == 0;
  return b->running;
}

void batcher_stop(struct batcher *b) {
  if (!b->running)
    return;
  pthread_mutex_lock(&b->lock);
  b->stop = true;
  pthread_cond_signal(&b->ready);
  pthread_mutex_unlock(&b->lock);
  pthread_join(b->thread, NULL);
  b->running = false;
}

bool batcher_submit(struct batcher *b, void *item) {
  struct batch_waiter w = {.item = item};
  pthread_mutex_lock(&b->lock);
  if (!b->running || b->stop) {
    pthread_mutex_unlock(&b->lock);
    return false;
  }
  if (b->tail != NULL)
    b->tail->next = &w;
  else
    b->head = &w;
  b->tail = &w;
  pthread_cond_signal(&b->ready);
  while (!w.done)
    pthread_cond_wait(&b->done, &b->lock);
  pthread_mutex_unlock(&b->lock);
  return true;
}
