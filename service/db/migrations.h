#ifndef MACHTIGEN_MIGRATIONS_H
#define MACHTIGEN_MIGRATIONS_H

struct migration {
  int version;
  const char *name;
  const char *sql;
};

extern const struct migration migrations[];
extern const int migration_count;

#endif
