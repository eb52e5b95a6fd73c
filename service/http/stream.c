/* Streamed request bodies: gzip inflation and the hand-off to a route's
 * stream_ops, so a handler sees plain bytes as they arrive and never the
 * whole upload at once. */
#include "http/stream.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

#define INFLATE_CHUNK (64 * 1024)

struct stream_pipe {
  bool gzip;
  bool inflate_ready;
  bool stopped; /* the handler said stop, or the gzip data was bad */
  bool gzip_error;
  bool gzip_done;
  z_stream z;
  unsigned char out[INFLATE_CHUNK];
};

bool stream_open(struct request *rq, const char *content_encoding) {
  rq->pipe = calloc(1, sizeof *rq->pipe);
  if (rq->pipe == NULL)
    return false;
  if (content_encoding != NULL && strcasecmp(content_encoding, "gzip") == 0) {
    rq->pipe->gzip = true;
    /* 16 + MAX_WBITS: a gzip wrapper, not zlib. */
    rq->pipe->inflate_ready = inflateInit2(&rq->pipe->z, 16 + MAX_WBITS) == Z_OK;
    return rq->pipe->inflate_ready;
  }
  return content_encoding == NULL || strcasecmp(content_encoding, "identity") == 0;
}

static bool deliver(struct request *rq, const char *data, size_t len) {
  if (rq->pipe->stopped || len == 0)
    return !rq->pipe->stopped;
  if (!rq->route->stream->data(rq, data, len))
    rq->pipe->stopped = true;
  return !rq->pipe->stopped;
}

void stream_feed(struct request *rq, const char *data, size_t len) {
  struct stream_pipe *p = rq->pipe;
  if (p == NULL || p->stopped)
    return;
  if (!p->gzip) {
    deliver(rq, data, len);
    return;
  }
  p->z.next_in = (unsigned char *)data;
  p->z.avail_in = (unsigned)len;
  while (p->z.avail_in > 0 && !p->stopped) {
    if (p->gzip_done) {
      /* Concatenated gzip members are legal (RFC 1952 §2.2). */
      if (inflateReset(&p->z) != Z_OK)
        break;
      p->gzip_done = false;
    }
    p->z.next_out = p->out;
    p->z.avail_out = sizeof p->out;
    int zr = inflate(&p->z, Z_NO_FLUSH);
    if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
      p->gzip_error = true;
      p->stopped = true;
      break;
    }
    deliver(rq, (const char *)p->out, sizeof p->out - p->z.avail_out);
    if (zr == Z_STREAM_END)
      p->gzip_done = true;
    else if (zr == Z_BUF_ERROR && p->z.avail_out != 0)
      break;
  }
}

bool stream_gzip_incomplete(const struct request *rq) {
  const struct stream_pipe *p = rq->pipe;
  return p != NULL && p->gzip && (p->gzip_error || !p->gzip_done);
}

void stream_close(struct request *rq) {
  if (rq->pipe == NULL)
    return;
  if (rq->route != NULL && rq->route->stream != NULL && rq->route->stream->cleanup != NULL)
    rq->route->stream->cleanup(rq);
  if (rq->pipe->inflate_ready)
    inflateEnd(&rq->pipe->z);
  free(rq->pipe);
  rq->pipe = NULL;
}
