/* Files compiled into the binary by embed_web.py: page templates, the
 * message catalogues and the static assets (our CSS and the NL Design
 * System's Rijkshuisstijl community CSS from node_modules). */
#ifndef MACHTIGEN_WEB_EMBED_H
#define MACHTIGEN_WEB_EMBED_H

#include <stddef.h>

struct web_file {
  const char *name;         /* "home" (templates), "nl" (messages), "app.css" (static) */
  const char *content_type; /* static assets only */
  const unsigned char *data;
  size_t len;
};

extern const struct web_file web_templates[];
extern const size_t web_template_count;
extern const struct web_file web_messages[];
extern const size_t web_message_count;
extern const struct web_file web_static[];
extern const size_t web_static_count;

#endif
