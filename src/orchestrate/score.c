/*
 * score.c — a critic's score from its text (see reduce.h).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "orchestrate/reduce.h"

/* "N/10", "N out of 10", "N%", or a bare number in [0,1] after "score". */
static double score_at(const char *p)
{
	char *end;
	double v = strtod(p, &end);
	if (end == p || v < 0)
		return -1;
	while (*end == ' ')
		end++;
	if (*end == '/') {
		double d = strtod(end + 1, NULL);
		return d > 0 && v <= d ? v / d : -1;
	}
	if (strncmp(end, "out of", 6) == 0) {
		double d = strtod(end + 6, NULL);
		return d > 0 && v <= d ? v / d : -1;
	}
	if (*end == '%')
		return v <= 100 ? v / 100 : -1;
	return v <= 1 ? v : v <= 10 ? v / 10 : -1;
}

double answer_parse_score(const char *text)
{
	double found = -1;
	for (const char *p = text; p && *p; p++) {
		if (strncasecmp(p, "score", 5) != 0)
			continue;
		const char *q = p + 5;
		while (*q && (*q == ':' || *q == ' ' || *q == '*' || *q == '='))
			q++;
		if (isdigit((unsigned char)*q)) {
			double v = score_at(q);
			if (v >= 0)
				found = v; /* the last one counts */
		}
	}
	return found;
}
