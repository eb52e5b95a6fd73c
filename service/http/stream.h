/* Streamed request bodies (see struct stream_ops in server.h). */
#ifndef MACHTIGEN_STREAM_H
#define MACHTIGEN_STREAM_H

#include <stdbool.h>
#include <stddef.h>

#include "http/server.h"

/* false for a Content-Encoding we do not take (only gzip and identity). */
bool stream_open(struct request *rq, const char *content_encoding);
/* Passes upload bytes on, inflated when gzip, until the handler stops. */
void stream_feed(struct request *rq, const char *data, size_t len);
/* true when a gzip body ended before its end (truncated) or was corrupt. */
bool stream_gzip_incomplete(const struct request *rq);
/* Runs the handler's cleanup and frees the dispatcher's state. */
void stream_close(struct request *rq);

#endif
