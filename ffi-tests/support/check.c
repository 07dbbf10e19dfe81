#include "check.h"

unsigned checks_passed;
unsigned checks_failed;

void check_record(int ok, const char *file, int line, const char *what,
		  long long got, long long want)
{
	if (ok) {
		checks_passed++;
		return;
	}
	checks_failed++;
	fprintf(stderr, "%s:%d: check failed: %s (got %lld, want %lld)\n", file,
		line, what, got, want);
}

void check_eq(long long got, long long want, const char *file, int line,
	      const char *what)
{
	check_record(got == want, file, line, what, got, want);
}

int test_summary(const char *name)
{
	printf("%s: %u passed, %u failed\n", name, checks_passed, checks_failed);
	return checks_failed ? 1 : 0;
}
