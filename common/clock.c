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
#include <stdint.h>
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

/* n decimal digits at s, or -1 */
static int
digits(const char *s, int n)
{
	int			v = 0;

	for (int i = 0; i < n; i++)
	{
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/*
 * Parsed by hand, not sscanf + timegm: the relay calls this once per outbox
 * row, and sscanf was 5% of its CPU in a drain profile.  Days from the
 * civil date: Howard Hinnant's days_from_civil (proleptic Gregorian).
 */
int64_t
tk_parse_rfc3339_us(const char *s)
{
	int			y,
				mo,
				d,
				h,
				mi,
				sec;
	int			us = 0;
	int64_t		era,
				yoe,
				doy,
				doe,
				days;

	if (s == NULL || strlen(s) < 19 || s[4] != '-' || s[7] != '-' || s[10] != 'T' ||
		s[13] != ':' || s[16] != ':')
		return 0;
	y = digits(s, 4);
	mo = digits(s + 5, 2);
	d = digits(s + 8, 2);
	h = digits(s + 11, 2);
	mi = digits(s + 14, 2);
	sec = digits(s + 17, 2);
	if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || mi < 0 || sec < 0)
		return 0;
	if (s[19] == '.')
	{
		int			n = 0;

		for (const char *p = s + 20; *p >= '0' && *p <= '9' && n < 6; p++, n++)
			us = us * 10 + (*p - '0');
		for (; n < 6; n++)
			us *= 10;
	}
	y -= mo <= 2;
	era = y / 400;
	yoe = y - era * 400;
	doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	days = era * 146097 + doe - 719468;
	return ((days * 24 + h) * 60 + mi) * 60 * INT64_C(1000000) +
		(int64_t) sec * 1000000 + us;
}
