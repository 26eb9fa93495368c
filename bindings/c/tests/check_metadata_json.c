/* Checks dora_metadata_to_json / dora_metadata_from_json through the public API only:
 * every parameter type round-trips, and bad input is refused with the parameter named.
 * Prints nothing and exits 0 when every check passes (run under ASan/UBSan too). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dora_node_api.h"

static int failures;

#define CHECK(cond)                                                        \
  do {                                                                     \
    if (!(cond)) {                                                         \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                          \
    }                                                                      \
  } while (0)

static void expect_json(const DoraMetadata *m, const char *expected) {
  size_t len = 0;
  char *json = dora_metadata_to_json(m, &len);
  CHECK(json != NULL);
  if (!json) return;
  CHECK(len == strlen(json));
  if (strcmp(json, expected) != 0) {
    fprintf(stderr, "to_json:\n  got      %s\n  expected %s\n", json, expected);
    failures++;
  }
  dora_free_string(json);
}

static void expect_refused(const char *json, const char *message_part) {
  DoraMetadata *m = dora_metadata_from_json(json, strlen(json));
  CHECK(m == NULL);
  dora_metadata_free(m);
  const char *error = dora_last_error();
  if (!error || !strstr(error, message_part)) {
    fprintf(stderr, "from_json(%s): error \"%s\" does not mention \"%s\"\n", json, error ? error : "(none)", message_part);
    failures++;
  }
}

int main(void) {
  /* Built with the typed setters, read back as one JSON object. */
  DoraMetadata *m = dora_metadata_new();
  const int64_t ints[] = {1, -2, INT64_MAX};
  const double floats[] = {0.5, 1e300};
  const char *const strings[] = {"a", "\"q\"\n"};
  CHECK(dora_metadata_set_bool(m, "b", true) == 0);
  CHECK(dora_metadata_set_int(m, "i", INT64_MIN) == 0);
  CHECK(dora_metadata_set_float(m, "f", 0.1) == 0);
  CHECK(dora_metadata_set_float(m, "whole", 3.0) == 0);
  CHECK(dora_metadata_set_float(m, "nan", NAN) == 0);
  CHECK(dora_metadata_set_string(m, "s", "x\0y", 3) == 0);
  CHECK(dora_metadata_set_timestamp(m, "t", 1700000000123456789) == 0);
  CHECK(dora_metadata_set_int_list(m, "il", ints, 3) == 0);
  CHECK(dora_metadata_set_float_list(m, "fl", floats, 2) == 0);
  CHECK(dora_metadata_set_string_list(m, "sl", strings, 2) == 0);
  CHECK(dora_metadata_set_int_list(m, "empty", NULL, 0) == 0);
  expect_json(m,
              "{\"b\":true,\"i\":-9223372036854775808,\"f\":0.1,\"whole\":3.0,\"nan\":NaN,\"s\":\"x\\u0000y\","
              "\"t\":{\"timestamp_ns\":1700000000123456789},\"il\":[1,-2,9223372036854775807],\"fl\":[0.5,1e+300],"
              "\"sl\":[\"a\",\"\\\"q\\\"\\n\"],\"empty\":[]}");
  dora_metadata_free(m);

  /* Parsed from JSON, read back with the typed getters. */
  const char *json = "{\"i\": 9007199254740993, \"f\": 2.5, \"e\": 1E3, \"s\": \"\\u00e9\", \"n\": null, "
                     "\"bl\": [true, false], \"nl\": [1, 2.5], \"sl\": [\"x\"], \"ok\": false}";
  m = dora_metadata_from_json(json, strlen(json));
  CHECK(m != NULL);
  if (m) {
    int64_t i = 0;
    double f = 0;
    bool b = true;
    const char *s = NULL;
    size_t n = 0;
    const double *fs = NULL;
    CHECK(dora_metadata_len(m) == 8); /* null adds nothing */
    CHECK(dora_metadata_get_int(m, "i", &i) == 0 && i == 9007199254740993LL); /* exact beyond 2^53 */
    CHECK(dora_metadata_get_float(m, "f", &f) == 0 && f == 2.5);
    CHECK(dora_metadata_type(m, "e") == DORA_PARAMETER_FLOAT);
    CHECK(dora_metadata_get_string(m, "s", &s, &n) == 0 && n == 2 && memcmp(s, "\xc3\xa9", 2) == 0);
    CHECK(dora_metadata_type(m, "bl") == DORA_PARAMETER_LIST_BOOL);
    CHECK(dora_metadata_get_list_item(m, "bl", 1, NULL, NULL, &b) == 0 && !b);
    CHECK(dora_metadata_get_float_list(m, "nl", &fs, &n) == 0 && n == 2 && fs[0] == 1.0 && fs[1] == 2.5);
    CHECK(dora_metadata_type(m, "sl") == DORA_PARAMETER_LIST_STRING);
    CHECK(dora_metadata_get_bool(m, "ok", &b) == 0 && !b);
    expect_json(m, "{\"i\":9007199254740993,\"f\":2.5,\"e\":1000.0,\"s\":\"\xc3\xa9\",\"bl\":[true,false],\"nl\":[1.0,2.5],\"sl\":[\"x\"],\"ok\":false}");
    dora_metadata_free(m);
  }

  expect_refused("{\"mixed\": [1, \"a\"]}", "parameter \"mixed\"");
  expect_refused("{\"obj\": {\"a\": 1}}", "parameter \"obj\"");
  expect_refused("{\"big\": 99999999999999999999}", "int64");
  expect_refused("[1, 2]", "must be an object");
  expect_refused("{\"a\": 1", "invalid JSON");
  CHECK(dora_metadata_from_json(NULL, 0) == NULL);
  return failures ? 1 : 0;
}
