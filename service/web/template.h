/* Page templates with escaping on by default.  A template is text with
 * tags; the data is a jansson object tree.  There is no tag that writes a
 * value unescaped, so no value can ever become markup:
 *
 *   {{name}}          the value (dotted names: a.b), HTML-escaped
 *   {{#name}}..{{/name}}  once per array element (pushed as context), once
 *                     with an object pushed, once when true / non-empty;
 *                     never for false, null, "", 0, [] or a missing name
 *   {{^name}}..{{/name}}  only when {{#name}} would not render
 *   {{t key}}         the message `key` of the page's language, escaped,
 *                     with {name} placeholders filled (escaped) from the data
 *   {{> name}}        another template;  {{> *name}}: the one the data names
 *   {{! comment}}
 *
 * Templates and message catalogues are compiled into the binary
 * (web_embed.c, generated from service/web/). */
#ifndef MACHTIGEN_TEMPLATE_H
#define MACHTIGEN_TEMPLATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct sbuf {
  char *p;
  size_t len, cap;
  bool failed; /* out of memory: the text is incomplete */
};

void sbuf_add(struct sbuf *b, const char *s, size_t n);
void sbuf_puts(struct sbuf *b, const char *s);
/* Appends s HTML-escaped (& < > " '), for text and quoted attributes. */
void sbuf_html(struct sbuf *b, const char *s, size_t n);
void sbuf_free(struct sbuf *b);

/* A template source by name, or NULL. */
typedef const char *(*template_lookup_fn)(const char *name);
/* A message text by key, or NULL. */
typedef const char *(*message_lookup_fn)(void *cls, const char *key);

struct template_env {
  template_lookup_fn templates;
  message_lookup_fn messages;
  void *messages_cls;
};

/* Renders template `name` with data into out.  false (with *err set to a
 * static reason) on an unknown template or message, a malformed tag, or
 * nesting deeper than 16; out then holds a partial text to throw away. */
bool template_render(const struct template_env *env, const char *name, json_t *data,
                     struct sbuf *out, const char **err);

/* The same for a template given as text (tests, fuzzing). */
bool template_render_text(const struct template_env *env, const char *text, json_t *data,
                          struct sbuf *out, const char **err);

#endif
