#include "web/template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 16
#define MAX_STACK 32
#define MAX_NAME 64

void sbuf_add(struct sbuf *b, const char *s, size_t n) {
  if (b->failed || n == 0)
    return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
      b->failed = true;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

void sbuf_puts(struct sbuf *b, const char *s) { sbuf_add(b, s, strlen(s)); }

void sbuf_html(struct sbuf *b, const char *s, size_t n) {
  size_t start = 0;
  for (size_t i = 0; i < n; i++) {
    const char *rep = NULL;
    switch (s[i]) {
    case '&':
      rep = "&amp;";
      break;
    case '<':
      rep = "&lt;";
      break;
    case '>':
      rep = "&gt;";
      break;
    case '"':
      rep = "&quot;";
      break;
    case '\'':
      rep = "&#39;";
      break;
    default:
      continue;
    }
    sbuf_add(b, s + start, i - start);
    sbuf_puts(b, rep);
    start = i + 1;
  }
  sbuf_add(b, s + start, n - start);
}

void sbuf_free(struct sbuf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

struct render {
  const struct template_env *env;
  struct sbuf *out;
  json_t *stack[MAX_STACK];
  int top; /* number of entries */
  const char *err;
};

static bool fail(struct render *r, const char *why) {
  if (r->err == NULL)
    r->err = why;
  return false;
}

/* The value of a (dotted) name: the innermost context that has its first
 * part, then down the rest.  "." is the innermost context itself. */
static json_t *lookup(struct render *r, const char *name, size_t len) {
  if (len == 1 && name[0] == '.')
    return r->top > 0 ? r->stack[r->top - 1] : NULL;
  const char *dot = memchr(name, '.', len);
  size_t first = dot ? (size_t)(dot - name) : len;
  json_t *v = NULL;
  for (int i = r->top - 1; i >= 0 && v == NULL; i--)
    if (json_is_object(r->stack[i]))
      v = json_object_getn(r->stack[i], name, first);
  while (v != NULL && dot != NULL) {
    const char *part = dot + 1;
    dot = memchr(part, '.', len - (size_t)(part - name));
    size_t plen = dot ? (size_t)(dot - part) : len - (size_t)(part - name);
    v = json_is_object(v) ? json_object_getn(v, part, plen) : NULL;
  }
  return v;
}

static void write_value(struct render *r, json_t *v) {
  char num[32];
  if (json_is_string(v)) {
    sbuf_html(r->out, json_string_value(v), json_string_length(v));
  } else if (json_is_integer(v)) {
    snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
    sbuf_puts(r->out, num);
  } else if (json_is_real(v)) {
    snprintf(num, sizeof num, "%g", json_real_value(v));
    sbuf_puts(r->out, num);
  } else if (json_is_true(v)) {
    sbuf_puts(r->out, "true");
  }
}

static bool truthy(json_t *v) {
  if (v == NULL || json_is_null(v) || json_is_false(v))
    return false;
  if (json_is_string(v))
    return json_string_length(v) > 0;
  if (json_is_integer(v))
    return json_integer_value(v) != 0;
  if (json_is_array(v))
    return json_array_size(v) > 0;
  return true;
}

static bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.' || c == '*';
}

/* A message with its {name} placeholders filled from the data. */
static bool write_message(struct render *r, const char *key, size_t klen) {
  char k[MAX_NAME + 1];
  if (klen > MAX_NAME)
    return fail(r, "message key too long");
  memcpy(k, key, klen);
  k[klen] = '\0';
  const char *text = r->env->messages ? r->env->messages(r->env->messages_cls, k) : NULL;
  if (text == NULL)
    return fail(r, "unknown message");
  const char *p = text;
  while (*p != '\0') {
    const char *open = strchr(p, '{');
    if (open == NULL) {
      sbuf_html(r->out, p, strlen(p));
      break;
    }
    const char *close = open + 1;
    while (name_char(*close))
      close++;
    if (*close != '}' || close == open + 1) {
      sbuf_html(r->out, p, (size_t)(open - p) + 1);
      p = open + 1;
      continue;
    }
    sbuf_html(r->out, p, (size_t)(open - p));
    write_value(r, lookup(r, open + 1, (size_t)(close - open - 1)));
    p = close + 1;
  }
  return true;
}

static bool render_range(struct render *r, const char *text, size_t len, int depth);

static bool render_partial(struct render *r, const char *name, size_t len, int depth) {
  char n[MAX_NAME + 1];
  if (len > 0 && name[0] == '*') {
    json_t *v = lookup(r, name + 1, len - 1);
    if (!json_is_string(v))
      return fail(r, "dynamic partial name missing");
    name = json_string_value(v);
    len = json_string_length(v);
  }
  if (len == 0 || len > MAX_NAME)
    return fail(r, "bad partial name");
  memcpy(n, name, len);
  n[len] = '\0';
  const char *src = r->env->templates(n);
  if (src == NULL)
    return fail(r, "unknown template");
  return render_range(r, src, strlen(src), depth + 1);
}

/* One tag: its sigil (0 for a plain value) and its trimmed name. */
struct tag {
  char sigil;
  const char *name;
  size_t len;
  const char *end; /* just past "}}" */
};

static bool parse_tag(const char *open, const char *limit, struct tag *t) {
  const char *close = open + 2;
  while (close + 1 < limit && !(close[0] == '}' && close[1] == '}'))
    close++;
  if (close + 1 >= limit)
    return false;
  const char *p = open + 2;
  t->sigil = 0;
  if (*p == '#' || *p == '^' || *p == '/' || *p == '>' || *p == '!') {
    t->sigil = *p++;
  } else if (p[0] == 't' && p[1] == ' ') {
    t->sigil = 't';
    p += 2;
  }
  while (p < close && *p == ' ')
    p++;
  const char *e = close;
  while (e > p && e[-1] == ' ')
    e--;
  t->name = p;
  t->len = (size_t)(e - p);
  t->end = close + 2;
  if (t->sigil == '!')
    return true;
  for (const char *c = p; c < e; c++)
    if (!name_char(*c))
      return false;
  return t->len > 0;
}

/* Finds the {{/name}} that closes the section opened just before from. */
static bool find_close(const char *from, const char *limit, const struct tag *open,
                       const char **body_end, const char **after) {
  int nesting = 0;
  const char *p = from;
  while ((p = memmem(p, (size_t)(limit - p), "{{", 2)) != NULL) {
    struct tag t;
    if (!parse_tag(p, limit, &t))
      return false;
    if (t.sigil == '#' || t.sigil == '^') {
      nesting++;
    } else if (t.sigil == '/') {
      if (nesting == 0) {
        if (t.len != open->len || memcmp(t.name, open->name, t.len) != 0)
          return false;
        *body_end = p;
        *after = t.end;
        return true;
      }
      nesting--;
    }
    p = t.end;
  }
  return false;
}

static bool render_section(struct render *r, const struct tag *t, const char *body, size_t len,
                           int depth) {
  json_t *v = lookup(r, t->name, t->len);
  if (t->sigil == '^')
    return truthy(v) ? true : render_range(r, body, len, depth);
  if (!truthy(v))
    return true;
  if (r->top + 1 >= MAX_STACK)
    return fail(r, "nesting too deep");
  if (json_is_array(v)) {
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item) {
      r->stack[r->top++] = item;
      bool ok = render_range(r, body, len, depth + 1);
      r->top--;
      if (!ok)
        return false;
    }
    return true;
  }
  if (json_is_object(v)) {
    r->stack[r->top++] = v;
    bool ok = render_range(r, body, len, depth + 1);
    r->top--;
    return ok;
  }
  return render_range(r, body, len, depth + 1);
}

static bool render_range(struct render *r, const char *text, size_t len, int depth) {
  if (depth > MAX_DEPTH)
    return fail(r, "nesting too deep");
  const char *p = text, *limit = text + len;
  while (p < limit) {
    const char *open = memmem(p, (size_t)(limit - p), "{{", 2);
    if (open == NULL) {
      sbuf_add(r->out, p, (size_t)(limit - p));
      break;
    }
    sbuf_add(r->out, p, (size_t)(open - p));
    struct tag t;
    if (!parse_tag(open, limit, &t))
      return fail(r, "malformed tag");
    p = t.end;
    switch (t.sigil) {
    case 0:
      write_value(r, lookup(r, t.name, t.len));
      break;
    case 't':
      if (!write_message(r, t.name, t.len))
        return false;
      break;
    case '>':
      if (!render_partial(r, t.name, t.len, depth))
        return false;
      break;
    case '#':
    case '^': {
      const char *body_end, *after;
      if (!find_close(p, limit, &t, &body_end, &after))
        return fail(r, "unclosed section");
      if (!render_section(r, &t, p, (size_t)(body_end - p), depth))
        return false;
      p = after;
      break;
    }
    case '/':
      return fail(r, "unopened section close");
    default: /* comment */
      break;
    }
  }
  return !r->out->failed || fail(r, "out of memory");
}

bool template_render_text(const struct template_env *env, const char *text, json_t *data,
                          struct sbuf *out, const char **err) {
  struct render r = {.env = env, .out = out};
  r.stack[r.top++] = data;
  bool ok = render_range(&r, text, strlen(text), 0);
  if (err != NULL)
    *err = r.err;
  return ok;
}

bool template_render(const struct template_env *env, const char *name, json_t *data,
                     struct sbuf *out, const char **err) {
  const char *src = env->templates(name);
  if (src == NULL) {
    if (err != NULL)
      *err = "unknown template";
    return false;
  }
  return template_render_text(env, src, data, out, err);
}
