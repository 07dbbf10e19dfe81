/*
 * Minimal assertions for the C tests: each check counts as passed or
 * failed, a failure prints where and why, and test_summary() turns any
 * failure into a non-zero exit status.
 */
#ifndef FFI_TESTS_CHECK_H
#define FFI_TESTS_CHECK_H

#include <stdio.h>

extern unsigned checks_passed;
extern unsigned checks_failed;

void check_record(int ok, const char *file, int line, const char *what,
		  long long got, long long want);
void check_eq(long long got, long long want, const char *file, int line,
	      const char *what);

/* A condition that must hold. */
#define CHECK(cond) check_record(!!(cond), __FILE__, __LINE__, #cond, 0, 0)

/* Two integers that must be equal, each evaluated once; both are printed
 * on failure. */
#define CHECK_EQ(got, want) \
	check_eq((long long)(got), (long long)(want), __FILE__, __LINE__, #got " == " #want)

/* Prints "N passed, M failed" and returns the exit status. */
int test_summary(const char *name);

#endif
