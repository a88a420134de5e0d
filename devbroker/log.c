/*-------------------------------------------------------------------------
 *
 * log.c
 *	  timestamped logging to stderr for todo-kafka-devbroker
 *
 * One line per event: an ISO 8601 UTC timestamp with milliseconds, the
 * level, then the message, e.g.
 *
 *	2024-05-01T10:00:00.123Z INFO: broker 2 is down
 *
 * Each line is formatted into one buffer and written with a single write(),
 * so lines from librdkafka's threads (the log callback) do not interleave
 * with ours.  stdout is reserved for the bootstrap line and command answers.
 *
 * IDENTIFICATION
 *	  devbroker/log.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "devbroker.h"

static const char *const level_names[] = {
	[DB_DEBUG] = "DEBUG",
	[DB_INFO] = "INFO",
	[DB_WARNING] = "WARNING",
	[DB_ERROR] = "ERROR",
};

void
devbroker_log(devbroker_level level, const char *fmt,...)
{
	char		line[2048];
	struct timeval tv;
	struct tm	tm;
	size_t		len;
	int			n;
	va_list		ap;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	len = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line + len, sizeof(line) - len, ".%03dZ %s: ",
				 (int) (tv.tv_usec / 1000), level_names[level]);
	if (n > 0)
		len += (size_t) n;

	va_start(ap, fmt);
	n = vsnprintf(line + len, sizeof(line) - len - 1, fmt, ap);
	va_end(ap);
	if (n > 0)
		len += ((size_t) n < sizeof(line) - len - 1) ? (size_t) n
			: sizeof(line) - len - 2;
	line[len++] = '\n';

	/* best effort: nothing sensible to do if stderr is gone */
	if (write(STDERR_FILENO, line, len) < 0)
		return;
}
