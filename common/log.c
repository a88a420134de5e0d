/*-------------------------------------------------------------------------
 *
 * log.c
 *	  one-line logging to stderr for the todo_kafka daemons
 *
 * Every line is "<ISO 8601 UTC timestamp> <LEVEL> <message>\n", written
 * with a single write(2) so lines from different threads (librdkafka's log
 * callback, the HTTP server thread, the main loop) never interleave.
 * Messages follow the server's tone: lower case, no trailing period.
 * Newlines inside a message are replaced by spaces: one event, one line.
 *
 * Callers must never pass secrets: see tk_config_is_secret() for the rule
 * used to redact configuration values before they are logged.
 *
 * Thread-safe; the level is read without a lock (a torn read only changes
 * whether one line is printed).
 *
 * IDENTIFICATION
 *	  common/log.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static volatile tk_log_level log_min_level = TK_LOG_INFO;

static const char *const level_names[] = {
	"DEBUG", "INFO", "WARNING", "ERROR", "FATAL"
};

void
tk_log_set_level(tk_log_level level)
{
	log_min_level = level;
}

tk_log_level
tk_log_get_level(void)
{
	return log_min_level;
}

const char *
tk_log_level_name(tk_log_level level)
{
	if (level < TK_LOG_DEBUG || level > TK_LOG_FATAL)
		return "LOG";
	return level_names[level];
}

bool
tk_log_parse_level(const char *name, tk_log_level *level)
{
	for (int i = TK_LOG_DEBUG; i <= TK_LOG_FATAL; i++)
	{
		if (strcasecmp(name, level_names[i]) == 0)
		{
			*level = (tk_log_level) i;
			return true;
		}
	}
	if (strcasecmp(name, "warn") == 0)
	{
		*level = TK_LOG_WARNING;
		return true;
	}
	return false;
}

void
tk_log(tk_log_level level, const char *fmt,...)
{
	char		line[4096];
	struct timeval tv;
	struct tm	tm;
	size_t		n;
	int			m;
	va_list		ap;

	if (level < log_min_level)
		return;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n += snprintf(line + n, sizeof(line) - n, ".%03ldZ %s ",
				  (long) (tv.tv_usec / 1000), tk_log_level_name(level));

	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	if ((size_t) m > sizeof(line) - n - 2)
		m = (int) (sizeof(line) - n - 2);
	for (size_t i = n; i < n + (size_t) m; i++)
	{
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	}
	n += (size_t) m;
	line[n++] = '\n';

	/* one write per line; a short write to stderr is not worth a retry loop */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}
