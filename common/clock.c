/*-------------------------------------------------------------------------
 *
 * clock.c
 *	  monotonic and wall-clock time in the units the daemons use
 *
 * Deadlines and timers use the monotonic clock (never jumps); latencies
 * against database timestamps use the wall clock.  tk_parse_rfc3339_us()
 * reads the UTC timestamps the relay selects from PostgreSQL
 * ("2026-01-22T10:00:00.123456Z") and returns 0 for anything else.
 * Thread-safe.
 *
 * IDENTIFICATION
 *	  common/clock.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "clock.h"

int64_t
tk_monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
tk_wall_us(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t) tv.tv_sec * 1000000 + tv.tv_usec;
}

int64_t
tk_parse_rfc3339_us(const char *s)
{
	struct tm	tm;
	int			us = 0;
	int			n = 0;

	memset(&tm, 0, sizeof(tm));
	if (s == NULL ||
		sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
			   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
		return 0;
	if (s[n] == '.')
	{
		int			digits = 0;

		for (const char *p = s + n + 1; *p >= '0' && *p <= '9' && digits < 6; p++, digits++)
			us = us * 10 + (*p - '0');
		for (; digits < 6; digits++)
			us *= 10;
	}
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t) timegm(&tm) * 1000000 + us;
}
