/* The page templates: escaping on by default, sections, messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "web/template.h"

static const char *templates(const char *name) {
  if (strcmp(name, "part") == 0)
    return "[{{x}}]";
  return NULL;
}

static const char *messages(void *cls, const char *key) {
  if (strcmp(key, "hello") == 0)
    return "Hallo {name} & {missing}!";
  return NULL;
}

static const struct template_env env = {templates, messages, NULL};

static char *render(const char *text, const char *json) {
  json_t *data = json_loads(json, 0, NULL);
  struct sbuf out = {0};
  const char *err = NULL;
  bool ok = template_render_text(&env, text, data, &out, &err);
  json_decref(data);
  if (!ok) {
    sbuf_free(&out);
    return NULL;
  }
  return out.p ? out.p : strdup("");
}

static void check(const char *text, const char *json, const char *want) {
  char *got = render(text, json);
  assert_non_null(got);
  assert_string_equal(got, want);
  free(got);
}

static void test_escaping(void **state) {
  (void)state;
  check("<p title=\"{{v}}\">{{v}}</p>", "{\"v\": \"<script>'&\\\"\"}",
        "<p title=\"&lt;script&gt;&#39;&amp;&quot;\">&lt;script&gt;&#39;&amp;&quot;</p>");
  check("{{a.b}}", "{\"a\": {\"b\": \"<b>\"}}", "&lt;b&gt;");
  check("{{t hello}}", "{\"name\": \"<i>\"}", "Hallo &lt;i&gt; &amp; !");
  /* No triple mustache: it is a malformed tag, not raw output. */
  assert_null(render("{{{v}}}", "{\"v\": \"<b>\"}"));
}

static void test_sections(void **state) {
  (void)state;
  check("{{#l}}({{n}}){{/l}}", "{\"l\": [{\"n\": 1}, {\"n\": 2}]}", "(1)(2)");
  check("{{#l}}x{{/l}}{{^l}}none{{/l}}", "{\"l\": []}", "none");
  check("{{#o}}{{x}}{{/o}}", "{\"o\": {\"x\": \"in\"}, \"x\": \"out\"}", "in");
  check("{{#o}}{{y}}{{/o}}", "{\"o\": {\"x\": \"in\"}, \"y\": \"outer\"}", "outer");
  check("{{> part}}", "{\"x\": \"<\"}", "[&lt;]");
  check("{{> *p}}", "{\"p\": \"part\", \"x\": 1}", "[1]");
  check("a{{! note }}b", "{}", "ab");
  assert_null(render("{{#a}}x", "{\"a\": true}"));
  assert_null(render("{{#a}}x{{/b}}", "{\"a\": true}"));
  assert_null(render("{{t nope}}", "{}"));
  assert_null(render("{{> nope}}", "{}"));
  assert_null(render("{{x", "{}"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_escaping),
      cmocka_unit_test(test_sections),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
