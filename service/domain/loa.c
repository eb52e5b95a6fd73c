/* Levels of assurance in eIDAS/DigiD order: basis < midden <
 * substantieel < hoog; the enum values compare in that order. */
#include "domain/domain.h"

#include <string.h>

static const char *const loa_names[] = {
    [LOA_BASIS] = "basis",
    [LOA_MIDDEN] = "midden",
    [LOA_SUBSTANTIEEL] = "substantieel",
    [LOA_HOOG] = "hoog",
};

enum loa loa_parse(const char *text) {
  if (text == NULL) {
    return LOA_NONE;
  }
  for (enum loa l = LOA_BASIS; l <= LOA_HOOG; l++) {
    if (strcmp(text, loa_names[l]) == 0) {
      return l;
    }
  }
  return LOA_NONE;
}

const char *loa_name(enum loa loa) {
  if (loa < LOA_BASIS || loa > LOA_HOOG) {
    return NULL;
  }
  return loa_names[loa];
}
