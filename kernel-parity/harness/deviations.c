/*
 * The deviation list: disagreements between Linux 6.12 and pgwalk that are
 * deliberate. A text file, one deviation per line:
 *
 *     <class pattern> | <reason>
 *
 * The pattern is matched against the whole class string the harness prints
 * ("unmap: range cuts a block [ret leaves tlbi] (0 vs -EINVAL)"); '*'
 * matches any run of characters and '?' any one, nothing else is special
 * (brackets are literal). Blank lines and lines starting with '#' are
 * ignored. A line without a reason is refused: every deviation says why.
 */
#include "driver.h"

#include <stdlib.h>
#include <string.h>

struct deviation *kp_deviations;
size_t kp_ndeviations;

static bool glob(const char *p, const char *s)
{
	for (; *p; p++, s++) {
		if (*p == '*') {
			while (p[1] == '*')
				p++;
			if (!p[1])
				return true;
			for (; *s; s++)
				if (glob(p + 1, s))
					return true;
			return false;
		}
		if (!*s || (*p != '?' && *p != *s))
			return false;
	}
	return !*s;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = 0;
	return s;
}

int deviations_load(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	int lineno = 0;

	if (!f) {
		perror(path);
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *s = trim(line), *bar;
		struct deviation *d;

		lineno++;
		if (!*s || *s == '#')
			continue;
		bar = strstr(s, " | ");
		if (!bar || !*trim(bar + 3)) {
			fprintf(stderr, "%s:%d: expected '<class pattern> | <reason>'\n", path, lineno);
			fclose(f);
			return -1;
		}
		*bar = 0;
		kp_deviations = realloc(kp_deviations, (kp_ndeviations + 1) * sizeof(*kp_deviations));
		if (!kp_deviations) {
			perror("deviations");
			exit(2);
		}
		d = &kp_deviations[kp_ndeviations++];
		memset(d, 0, sizeof(*d));
		snprintf(d->pattern, sizeof(d->pattern), "%s", trim(s));
		snprintf(d->reason, sizeof(d->reason), "%s", trim(bar + 3));
	}
	fclose(f);
	return 0;
}

struct deviation *deviation_match(const char *cls)
{
	size_t i;

	for (i = 0; i < kp_ndeviations; i++)
		if (glob(kp_deviations[i].pattern, cls))
			return &kp_deviations[i];
	return NULL;
}
